import type { FlagSpec, ParsedFlags } from './flags.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** Flags end at the first positional (`kiln run IMAGE CMD -x`). */
  stopAtPositional?: boolean;
  /** Returns the process exit code. */
  run(args: ParsedFlags): Promise<number>;
}

export const helpFlag: FlagSpec = { name: 'help', short: 'h', type: 'bool', description: 'Show help for the command' };
