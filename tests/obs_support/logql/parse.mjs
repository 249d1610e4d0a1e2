// Parse LogQL queries with Grafana's LogQL grammar (@grafana/lezer-logql) and report syntax errors.
// Input on stdin: a JSON array of strings. Output on stdout: a JSON array, one entry per query:
// null when it parses, or {"error": "...", "at": offset} for the first error node.
// Lezer recovers from errors by inserting error nodes (⚠) instead of failing, which is how
// Grafana's own Loki query editor detects invalid queries; this does the same.
import { parser } from "@grafana/lezer-logql";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const queries = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const results = queries.map((query) => {
  const tree = parser.parse(query);
  let error = null;
  tree.iterate({
    enter(node) {
      if (error) return false;
      if (node.type.isError) {
        const from = Math.max(0, node.from - 10);
        error = { error: `syntax error near ${JSON.stringify(query.slice(from, node.to + 10))}`, at: node.from };
        return false;
      }
      return true;
    },
  });
  if (!error && tree.topNode.name !== "LogQL") {
    error = { error: `unexpected top node ${tree.topNode.name}`, at: 0 };
  }
  return error;
});
process.stdout.write(JSON.stringify(results));
