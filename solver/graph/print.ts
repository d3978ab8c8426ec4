// Printable forms of a graph: JSON (`kiln build --print-graph`) and Graphviz dot (`--print-graph=dot`).
import type { Definition, Vertex } from './ops.js';

export function graphToJSON(def: Definition): string {
  return JSON.stringify(def, null, 2);
}

/** What a vertex is called in progress and graph pictures: its description, or a summary of its op. */
export function vertexLabel(v: Vertex): string {
  if (v.meta.description) return v.meta.description;
  switch (v.op.kind) {
    case 'source':
      return v.op.identifier;
    case 'exec':
      return v.op.args.join(' ');
    case 'file':
      return v.op.actions.map((a) => a.type).join(', ');
    case 'merge':
      return 'merge';
  }
}

export function graphToDot(def: Definition): string {
  const short = (d: string) => d.slice(7, 19);
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const lines = ['digraph kiln {', '  rankdir=BT;', '  node [shape=box, fontname="monospace"];'];
  for (const v of def.vertices) {
    const shape = v.op.kind === 'source' ? 'ellipse' : v.op.kind === 'exec' ? 'box' : 'note';
    lines.push(`  "${short(v.digest)}" [label="${esc(vertexLabel(v).slice(0, 80))}", shape=${shape}];`);
    v.inputs.forEach((i, n) => lines.push(`  "${short(v.digest)}" -> "${short(i.digest)}" [label="${n}"];`));
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
