import type { Gateway } from '../config/load.js';
import type { Evidence } from '../report/evidence.js';

/**
 * Shared shapes of a restore: one result per check and per step, and the report built from them.
 * Engines never throw past a step: a failed step yields a result with its reason, so a failed run still
 * produces a full report.
 */

export type CheckStatus = 'passed' | 'failed' | 'skipped';

/** The outcome of one verification. */
export interface CheckResult {
  /** Check name as written in plans, e.g. "redis-key-counts", "gateway-hello". */
  name: string;
  status: CheckStatus;
  /** One line a person can read: what was expected and what was found. */
  detail: string;
  /** Numbers and facts behind the verdict, for the report (no secrets). */
  evidence?: Record<string, unknown>;
  /** ISO time the check finished. */
  finishedAt: string;
  durationMs: number;
}

export type StepStatus = 'ok' | 'failed' | 'skipped';

export interface StepResult {
  id: string;
  /** The plan's role for this step: redis, database, dashboard, gateway. */
  component: string;
  action: string;
  status: StepStatus;
  /** Why it failed or was skipped. */
  reason?: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** What the action did: keys copied, bytes written, files restored, commands run. */
  details: Record<string, unknown>;
  checks: CheckResult[];
}

export interface ObjectiveResult {
  objectiveSeconds: number;
  achievedSeconds: number | null;
  met: boolean | null;
}

export interface RestoreReport {
  format: 'tykdr-restore-report/1';
  /** Restore run id (time-sortable, like snapshot ids). */
  id: string;
  kind: 'restore' | 'drill';
  plan: { name: string; file: string; version: number };
  /** `picked`: why a drill chose this snapshot when it was not the latest or a named one. */
  snapshot: { id: string; created_at: string; location: string; picked?: string };
  host: string;
  tool_version: string;
  dry_run: boolean;
  /** Incident time: --incident-at, or the restore start. */
  incident_at: string;
  started_at: string;
  finished_at: string;
  status: 'succeeded' | 'failed';
  steps: StepResult[];
  /** RTO: incident to the moment the last verification passed, against the strictest tier involved. */
  rto: ObjectiveResult & {
    tier: string;
    last_verified_at: string | null;
    /** Service restored: the first passed gateway key probe (else the first passed gateway check), from the incident. */
    service_restored_seconds?: number | null;
    service_restored_at?: string | null;
  };
  /** RPO per snapshot component: incident time minus the component's consistent point. */
  rpo: Record<string, ObjectiveResult & { tier: string; consistent_at: string }>;
  /** Non-fatal things an operator must know (e.g. gateway secret mismatch). */
  warnings: string[];
  /**
   * The verdict: passed only when every step succeeded and every objective was met. Objectives missed are
   * listed (the run then has status failed and exit code 8); checks that were skipped are "not proven",
   * named here, never counted as passed.
   */
  verdict: { passed: boolean; missed: string[]; not_proven: string[] };
  /** Drills: whether a Tyk Gateway was started and proved it serves the restored keys (drill.gateway.binary). */
  gateway?: GatewayProof;
  /** Drills: the scratch targets started, per component, when they say more than the kind (the scratch Redis's server). */
  scratch_targets?: Record<string, string>;
  /** What ties the run to its snapshot, plan, operator and ticket (reports before tykdr 0.2 lack it). */
  evidence?: Evidence;
}

/** A drill's gateway verdict, for people and for the JSON report. */
export interface GatewayProof {
  proven: boolean;
  /** One sentence: "gateway proven: ..." or "gateway not proven: ...". */
  summary: string;
  binary?: string;
  /** The version /hello reported. */
  version?: string | null;
  /** The drill gateway's log (secrets replaced), kept beside the report when the gateway step failed. */
  log?: string;
}

/**
 * A drill's own Tyk Gateway (src/core/drill/scratch-gateway.ts): the gateway step starts it once its files
 * are restored, and runs the gateway checks against what start() returns instead of skipping them.
 * start() rejects with a TykdrError (badInput: the binary cannot run; verifyFailed: it would not serve).
 */
export interface DrillGatewayStarter {
  start(signal: AbortSignal, note: (line: string) => void): Promise<{ gateway: Gateway; details: Record<string, unknown> }>;
}
