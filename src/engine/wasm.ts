// WebAssembly targets (wasi/wasm): images are made of files only (FROM scratch, COPY the module). kiln
// runs RUN steps in Linux containers and has no WebAssembly runtime, so a RUN on a wasm platform is
// refused before anything runs, naming its Dockerfile line.
import type { Definition } from '../../solver/graph/ops.js';
import { UserError } from '../../base/errors.js';

export function isWasmPlatform(p: { os: string; architecture: string } | undefined): boolean {
  return p !== undefined && (p.architecture === 'wasm' || p.os === 'wasi' || p.os === 'wasip1');
}

export function checkNoWasmRun(def: Definition): void {
  for (const v of def.vertices) {
    if (v.op.kind !== 'exec' || !isWasmPlatform(v.platform)) continue;
    const loc = v.meta.location;
    const where = loc ? `${loc.file}:${loc.startLine}: ` : '';
    const plat = `${v.platform!.os}/${v.platform!.architecture}`;
    throw new UserError(
      `${where}RUN cannot run for ${plat}: kiln runs RUN steps in Linux containers and has no WebAssembly runtime; build the module in a stage FROM --platform=$BUILDPLATFORM and COPY it into the ${plat} image`,
    );
  }
}
