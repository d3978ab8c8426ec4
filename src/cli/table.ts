// The CLI's tables (`kiln images`, `du`, `history ls`, `builder ls`, `builder builds`): columns padded to
// their widest cell plus a gap, the last column unpadded, no trailing spaces (as docker's tabwriter).

export interface TableOptions {
  /** Spaces between columns (docker images: 3). */
  gap?: number;
  /** Columns at least this wide (a fixed layout that widens for a longer cell). */
  minWidths?: number[];
}

/** The table's lines: the first row is the header. */
export function formatTable(rows: string[][], opts: TableOptions = {}): string[] {
  const gap = opts.gap ?? 3;
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(opts.minWidths?.[i] ?? 0, ...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + gap))).join('').trimEnd());
}

export function printTable(rows: string[][], opts: TableOptions = {}): void {
  for (const line of formatTable(rows, opts)) console.log(line);
}
