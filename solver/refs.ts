// What a solved vertex produces. A filesystem state is a stack of layer dirs in overlay form (bottom
// first; scratch is the empty stack); a local context is a plain directory read in place.

export interface LayerBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** `registry/repository` the blob was pulled from: a push to that registry can mount it from there. */
  from?: string;
}

export interface Layer {
  /** Overlay-form directory (whiteouts as 0/0 char devices, opaque dirs by xattr). */
  dir: string;
  /** Known once the layer has been packed (pulled layers know it from their image config). */
  diffId?: string;
  /** The compressed blob, when one exists in the content store. */
  blob?: LayerBlob;
  /** Id of a layer built by kiln (its dir lives in the snapshot store under this id). */
  id?: string;
  /** When a built layer was made (ISO 8601): its history time, so a cached rebuild gives the same image. */
  created?: string;
  /**
   * Set on a layer known only from an imported cache: its dir does not exist yet. The solver calls
   * `unpack` before an op reads the layer; exporters that only need the blob call `fetchBlob`.
   */
  remote?: RemoteLayer;
}

export interface RemoteLayer {
  fetchBlob(): Promise<void>;
  unpack(): Promise<void>;
}

/** Layers of `ref` that exist only in an imported cache. */
export function remoteLayers(ref: Ref): Layer[] {
  return ref.kind === 'layers' ? ref.layers.filter((l) => l.remote) : [];
}

export type Ref =
  | { kind: 'layers'; layers: Layer[] }
  | { kind: 'dir'; path: string; /** .dockerignore-style patterns that hide files of the dir */ excludes: string[] };

export const scratch: Ref = { kind: 'layers', layers: [] };

export function layersOf(ref: Ref, what: string): Layer[] {
  if (ref.kind !== 'layers') throw new Error(`${what}: a local directory cannot be used as a filesystem state here`);
  return ref.layers;
}
