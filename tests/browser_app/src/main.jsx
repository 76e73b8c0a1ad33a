// The dashboard calls its API on another origin with fetch and with axios; the promflux
// hook times every call and reports to the API's exporter.
import React, { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import axios from "axios";
import { usePromflux } from "promflux-browser/react";

const API = window.API_URL;

function Devices() {
  const [state, setState] = useState("loading");
  useEffect(() => {
    (async () => {
      for (let i = 0; i < 10; i++) await fetch(`${API}/items/${i}`);
      for (let i = 0; i < 10; i++) await axios.get(`${API}/items/${100 + i}`);
      await axios.post(`${API}/items`).catch(() => {});
      await fetch(`${API}/api/v1/users/7`).catch(() => {});
      setState("done");
    })().catch((error) => setState(`failed: ${error}`));
  }, []);
  return <p id="status">{state}</p>;
}

function App() {
  usePromflux({ routes: ["/items", "/items/{item_id}", "/api/v1/users/{user_id}"],
                endpoint: `${API}/metrics/client-timings`, flushMs: 500 });
  return <Devices />;
}

createRoot(document.getElementById("root")).render(
  <React.StrictMode><App /></React.StrictMode>);
