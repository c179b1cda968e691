// Validates every ServiceMonitor of the given multi-document YAML files against the
// prometheus-operator models (@kubernetes-models/prometheus-operator, installed by
// scripts/setup.sh test under target/tools/npm). Exits 1 on any invalid one, 2 when none found.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const root = process.env.NODE_PATH || "target/tools/npm/node_modules";
const load = (m) => import(pathToFileURL(path.join(root, m)).href);
const { parseAllDocuments } = await load("yaml/dist/index.js");
const { ServiceMonitor } = await load(
  "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js"
);

let bad = 0;
let seen = 0;
for (const f of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(f, "utf8"))) {
    const o = doc.toJS();
    if (!o || o.kind !== "ServiceMonitor") continue;
    seen++;
    try {
      new ServiceMonitor(o).validate();
      console.log(`ok   ${f} ${o.metadata.name}`);
    } catch (e) {
      bad++;
      console.log(`FAIL ${f} ${o.metadata?.name}: ${e.message}`);
    }
  }
}
if (seen === 0) {
  console.log("no ServiceMonitor found");
  process.exit(2);
}
process.exit(bad ? 1 : 0);
