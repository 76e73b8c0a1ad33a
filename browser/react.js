// React: install promflux's timing once, from the app's root component.
//
//   import { usePromflux } from "promflux-browser/react";
//   function App() {
//     usePromflux({ routes: ["/api/devices/{device_id}"],
//                   endpoint: "https://api.example/metrics/client-timings" });
//     ...
//   }
//
// or wrap the tree: <PromfluxProvider routes={...} endpoint={...}>...</PromfluxProvider>.
// It installs during the first render, not in an effect: React runs children's effects
// before their parent's, and a child's first API call must already be timed. Installing
// is idempotent: a second call (StrictMode, remounts) keeps the first.
import { useState } from "react";
import { install } from "./core.js";

export function usePromflux(options) {
  const [handle] = useState(() => install(options));
  return handle;
}

export function PromfluxProvider({ children, ...options }) {
  usePromflux(options);
  return children;
}
