// Per-stage conversion state (BuildKit's dispatchState) and the ordered set of stages with lookup by name
// and index.
import type { GraphPlatform } from '../../../solver/graph/ops.js';
import type { Command, Stage } from '../instructions.js';
import { newStageLintState } from '../lint/command-checks.js';
import { scratchState, type FsState } from './graph-emit.js';
import { cloneImage } from './image-config.js';
import type { ImageConfigJSON, NamedContext } from './types.js';

export interface StageCommand {
  command: Command;
  /** The stages/images a command reads from (COPY --from, RUN --mount from=…), index-aligned with mounts. */
  sources: (StageState | undefined)[];
  isOnBuild: boolean;
}

export interface BuildArg {
  key: string;
  value?: string;
}

export class StageState {
  state: FsState = scratchState();
  image: ImageConfigJSON = {};
  platform?: GraphPlatform;
  base?: StageState;
  /** The image this stage (or its base chain) started from. */
  baseImage?: { ref: string; digest: string };
  namedContext?: NamedContext;
  readonly deps = new Map<StageState, Command>();
  commands: StageCommand[] = [];
  buildArgs: BuildArg[] = [];
  dispatched = false;
  resolved = false;
  onBuildInit = false;
  ignoreCache = false;
  /** Progress name: the stage name, `stage-N`, or '' when the Dockerfile has one stage. */
  stageName: string;
  cmdTotal = 0;
  cmdIndex = 0;
  cmdIsOnBuild = false;
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet = false;
  /** What the build checks remember of this stage (WORKDIR set, CMD seen…). */
  readonly lintState = newStageLintState();

  constructor(
    /** The FROM instruction, with baseName expanded; a synthetic one for `COPY --from=image`. */
    public stage: Stage,
    /** Position among the Dockerfile's stages; -1 for images referenced by COPY --from / RUN --mount. */
    public readonly index: number,
    public readonly unregistered = false,
  ) {
    this.stageName = stage.stageName;
  }

  /** A label for stagesUsed: the stage name, or its index. */
  get label(): string {
    return this.stage.stageName || String(this.index);
  }

  /** Inherits from a base stage (BuildKit's init): filesystem, platform, config without ONBUILD, build args. */
  init(): void {
    const b = this.base;
    if (!b) return;
    this.state = { ...b.state };
    this.platform = b.platform;
    this.image = cloneImage(b.image);
    if (this.image.config) this.image.config.OnBuild = null;
    this.baseImage = b.baseImage;
    this.buildArgs = [...b.buildArgs];
    this.lintState.workdirSet = b.lintState.workdirSet; // a WORKDIR set in the base stage counts (BuildKit init)
  }
}

export class StageSet {
  readonly states: StageState[] = [];
  private readonly byName = new Map<string, StageState>();

  names(): string[] {
    return this.states.filter((s) => s.stageName !== '' && !s.unregistered).map((s) => s.stageName);
  }

  add(s: StageState): void {
    this.states.push(s);
    // The base is looked up as written: `FROM Build` is an image name, not the stage `build` (BuildKit addState).
    const base = this.byName.get(s.stage.baseName);
    if (base) s.base = base;
    if (s.stage.stageName !== '' && !s.unregistered) this.byName.set(s.stage.stageName.toLowerCase(), s);
  }

  byStageName(name: string): StageState | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** Stage by position among the Dockerfile's own stages. */
  byIndex(i: number): StageState | undefined {
    return this.states.filter((s) => !s.unregistered)[i];
  }
}
