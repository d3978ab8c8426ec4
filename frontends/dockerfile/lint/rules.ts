// BuildKit v0.25's Dockerfile build-check rules (frontend/dockerfile/linter/ruleset.go): names, descriptions,
// documentation URLs and message texts, word for word, because users grep for them and skip them by name.

export interface LintRule {
  name: string;
  description: string;
  url: string;
  /** Off unless enabled with `# check=experimental=NAME|all`. */
  experimental?: boolean;
}

const rule = (name: string, slug: string, description: string, experimental = false): LintRule => ({
  name,
  description,
  url: slug === '' ? '' : `https://docs.docker.com/go/dockerfile/rule/${slug}/`,
  ...(experimental ? { experimental } : {}),
});

export const RULES = {
  StageNameCasing: rule('StageNameCasing', 'stage-name-casing', 'Stage names should be lowercase'),
  FromAsCasing: rule('FromAsCasing', 'from-as-casing', "The 'as' keyword should match the case of the 'from' keyword"),
  NoEmptyContinuation: rule('NoEmptyContinuation', 'no-empty-continuation', 'Empty continuation lines will become errors in a future release'),
  ConsistentInstructionCasing: rule('ConsistentInstructionCasing', 'consistent-instruction-casing', 'All commands within the Dockerfile should use the same casing (either upper or lower)'),
  DuplicateStageName: rule('DuplicateStageName', 'duplicate-stage-name', 'Stage names should be unique'),
  ReservedStageName: rule('ReservedStageName', 'reserved-stage-name', 'Reserved words should not be used as stage names'),
  JSONArgsRecommended: rule('JSONArgsRecommended', 'json-args-recommended', 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals'),
  MaintainerDeprecated: rule('MaintainerDeprecated', 'maintainer-deprecated', 'The MAINTAINER instruction is deprecated, use a label instead to define an image author'),
  UndefinedArgInFrom: rule('UndefinedArgInFrom', 'undefined-arg-in-from', 'FROM command must use declared ARGs'),
  WorkdirRelativePath: rule('WorkdirRelativePath', 'workdir-relative-path', 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes'),
  UndefinedVar: rule('UndefinedVar', 'undefined-var', 'Variables should be defined before their use'),
  MultipleInstructionsDisallowed: rule('MultipleInstructionsDisallowed', 'multiple-instructions-disallowed', 'Multiple instructions of the same type should not be used in the same stage'),
  LegacyKeyValueFormat: rule('LegacyKeyValueFormat', 'legacy-key-value-format', 'Legacy key/value format with whitespace separator should not be used'),
  InvalidBaseImagePlatform: rule('InvalidBaseImagePlatform', '', 'Base image platform does not match expected target platform'),
  RedundantTargetPlatform: rule('RedundantTargetPlatform', 'redundant-target-platform', 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior'),
  SecretsUsedInArgOrEnv: rule('SecretsUsedInArgOrEnv', 'secrets-used-in-arg-or-env', 'Sensitive data should not be used in the ARG or ENV commands'),
  InvalidDefaultArgInFrom: rule('InvalidDefaultArgInFrom', 'invalid-default-arg-in-from', 'Default value for global ARG results in an empty or invalid base image name'),
  FromPlatformFlagConstDisallowed: rule('FromPlatformFlagConstDisallowed', 'from-platform-flag-const-disallowed', 'FROM --platform flag should not use a constant value'),
  CopyIgnoredFile: rule('CopyIgnoredFile', 'copy-ignored-file', 'Attempting to Copy file that is excluded by .dockerignore', true),
  InvalidDefinitionDescription: rule(
    'InvalidDefinitionDescription',
    'invalid-definition-description',
    'Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.',
    true,
  ),
  ExposeProtoCasing: rule('ExposeProtoCasing', 'expose-proto-casing', 'Protocol in EXPOSE instruction should be lowercase'),
  ExposeInvalidFormat: rule('ExposeInvalidFormat', 'expose-invalid-format', 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release'),
} satisfies Record<string, LintRule>;

export type RuleName = keyof typeof RULES;

const q = (s: string): string => JSON.stringify(s); // Go's %q for the plain strings these rules quote

/** The message of each rule, as BuildKit formats it. */
export const MESSAGES = {
  StageNameCasing: (stage: string) => `Stage name '${stage}' should be lowercase`,
  FromAsCasing: (from: string, as: string) => `'${as}' and '${from}' keywords' casing do not match`,
  NoEmptyContinuation: () => 'Empty continuation line',
  ConsistentInstructionCasing: (cmd: string, casing: string) => `Command '${cmd}' should match the case of the command majority (${casing})`,
  DuplicateStageName: (stage: string) => `Duplicate stage name ${q(stage)}, stage names should be unique`,
  ReservedStageName: (stage: string) => `Stage name should not use the same name as reserved stage ${q(stage)}`,
  JSONArgsRecommended: (instruction: string) => `JSON arguments recommended for ${instruction} to prevent unintended behavior related to OS signals`,
  MaintainerDeprecated: () => 'Maintainer instruction is deprecated in favor of using label',
  UndefinedArgInFrom: (arg: string, hint?: string) => `FROM argument '${arg}' is not declared${hint ? ` (did you mean ${hint}?)` : ''}`,
  WorkdirRelativePath: (dir: string) => `Relative workdir ${q(dir)} can have unexpected results if the base image changes`,
  UndefinedVar: (name: string, hint?: string) => `Usage of undefined variable '$${name}'${hint ? ` (did you mean $${hint}?)` : ''}`,
  MultipleInstructionsDisallowed: (instruction: string) => `Multiple ${instruction} instructions should not be used in the same stage because only the last one will be used`,
  LegacyKeyValueFormat: (cmd: string) => `"${cmd} key=value" should be used instead of legacy "${cmd} key value" format`,
  RedundantTargetPlatform: (value: string) => `Setting platform to predefined ${value} in FROM is redundant as this is the default behavior`,
  SecretsUsedInArgOrEnv: (instruction: string, key: string) => `Do not use ARG or ENV instructions for sensitive data (${instruction} ${q(key)})`,
  InvalidDefaultArgInFrom: (base: string) => `Default value for ARG ${base} results in empty or invalid base image name`,
  FromPlatformFlagConstDisallowed: (platform: string) => `FROM --platform flag should not use constant value ${q(platform)}`,
  CopyIgnoredFile: (cmd: string, file: string) => `Attempting to ${cmd} file ${q(file)} that is excluded by .dockerignore`,
  InvalidDefinitionDescription: (instruction: string, name: string) => `Comment for ${instruction} should follow the format: \`# ${name} <description>\``,
  ExposeProtoCasing: (port: string) => `Defined protocol '${port}' in EXPOSE instruction should be lowercase`,
  ExposeInvalidFormat: (port: string) => `EXPOSE instruction should not define an IP address or host-port mapping, found '${port}'`,
} as const;
