export { install, UNMATCHED } from "./core.js";
