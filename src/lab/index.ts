// The lab layer's public surface: the censor emulator and its emulated world (../shared/DESIGN.md "Lab").
export { parseScenario, loadScenario, scenarioPath, ScenarioError, type ScenarioProblem } from './scenario.js';
export { startLab, LabError, type Lab, type LabOptions, type LabSite, type LabTarget, type LabService } from './lab.js';
export { FetCensor, DEFAULT_FET_RATE, DEFAULT_FET_RESIDUAL_S, type FetDecision, type FetFlow } from './fet.js';
export {
  evalScenario,
  measureLab,
  scoreRows,
  labProbeDefaults,
  timeoutWaitMs,
  timeoutSeconds,
  type EvalReport,
  type EvalRow,
  type EvalRun,
  type EvalOptions,
  type Score,
} from './eval.js';
export { scenarioTargets, type Truth } from './truth.js';
export { scenarioTruth, expectedPath, readExpected, writeExpected, type ExpectedFile } from './expected.js';
export { nftAvailable, sweepStaleTables } from './nft.js';
export { peekClientHello } from './clienthello.js';
export { buildDemoScenario, readTestList, summarize, DEMO_LIST, type DemoSummary } from './demo.js';
export {
  startNetnsLab,
  censorHops,
  measureNetnsLab,
  evalNetnsScenario,
  netnsProblems,
  netnsClientAddress,
  GENUINE_DELAY_MS,
  type NetnsLab,
  type NetnsLabOptions,
} from './netns/netns-lab.js';
export { buildTopology, sweepNetns, netnsMissing, NetnsError, type Topology } from './netns/topology.js';
export { forgeReset, SHAPES as RESET_SHAPES, HENAN_PAYLOAD } from './netns/forge.js';
export type { RouterEvent } from './netns/router.js';
export { startPlatform, LAB_SOURCE_HEADER, type RunningPlatform, type PlatformTruth, type PlatformTruthPost } from './platform.js';
export {
  generateRules,
  ruleFor,
  generatedName,
  LIST_PROFILES,
  WILDCARD_SUFFIXES,
  type GeneratedRule,
  type ListProfile,
  type RuleShape,
} from './lists.js';
export { RuleSet, KeywordSet, ListError, forEachListLine, decodePath } from './rules.js';
export {
  inferLab,
  inferJobs,
  uniqueLines,
  padFor,
  type InferEndpoints,
  type InferJob,
  type InferLine,
  type InferTarget,
  type InferProtocol,
  type InferLabOptions,
} from './infer.js';
