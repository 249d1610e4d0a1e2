// Parse every ```mermaid block of the Markdown files given as arguments with Mermaid itself.
// Prints "ok FILE #N" or "FAIL FILE #N: error"; exit 1 when one fails. Used by
// tests/unit/test_runbooks.py; installed by scripts/deps.sh (node).
import { JSDOM } from 'jsdom';
import fs from 'node:fs';
const dom = new JSDOM('<!DOCTYPE html><body></body>');
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, 'utf8');
  const blocks = [...text.matchAll(/^```mermaid\n([\s\S]*?)^```/gm)].map(m => m[1]);
  for (const [i, block] of blocks.entries()) {
    try { await mermaid.parse(block); console.log(`ok ${file} #${i + 1}`); }
    catch (e) { failed++; console.log(`FAIL ${file} #${i + 1}: ${String(e.message || e).split('\n').slice(0, 4).join(' | ')}`); }
  }
}
process.exit(failed ? 1 : 0);
