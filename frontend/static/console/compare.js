/** The compare page: the run's samples of both versions side by side (common/samples.js). */

import { drawSamples } from "../common/samples.js";

const page = JSON.parse(document.getElementById("compare-data").textContent);
drawSamples(document.getElementById("samples"), document.getElementById("samples-empty"),
  page.samples, { before: page.start, after: page.result, categories: page.categories });
