// kiln's command-line entry (bin/kiln.js loads it): runs the command line and exits with its code.
import { runKiln } from './dispatch.js';

runKiln(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
