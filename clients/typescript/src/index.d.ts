// Types of lookout-client (hand-written; the code is plain ES modules in index.js).

/** A time: a Date, milliseconds since the epoch, or an RFC 3339 string. */
export type Time = Date | number | string;

export interface LookoutOptions {
  /** lookoutd's base URL. Default: `LOOKOUT_URL`, else `http://127.0.0.1:8484`. */
  url?: string;
  /** Bearer token for `/api/*`. Default: `LOOKOUT_TOKEN`. */
  token?: string;
  /**
   * A directory for the spool on disk (Node): events wait there while lookoutd cannot be reached,
   * and survive the process. Default: `LOOKOUT_SPOOL_DIR`; `null` for none. Without one (or with
   * no disk, as on Workers) the spool is memory.
   */
  spoolDir?: string | null;
  /** fdatasync each append to the spool on disk (survives a power cut, not only a kill). Default true. */
  spoolFsync?: boolean;
  /** Bound of the spool in bytes; oldest events are dropped first. Default 16 MiB on disk, 4 MiB in memory. */
  maxSpoolBytes?: number;
  /** Milliseconds between a run's automatic heartbeats (and `startHeartbeat`'s default). Default 60000. */
  heartbeatInterval?: number;
  /** Milliseconds an emitted event may wait for its batch. Default 500. */
  flushInterval?: number;
  /** Most events in one request. Default 500 (lookoutd takes 1000 by default). */
  maxBatch?: number;
  /** Most bytes in one request. Default 512 KiB (lookoutd takes 1 MiB by default). */
  maxBatchBytes?: number;
  /** Bound of the in-memory queue in events; oldest dropped first. Default 10000. */
  maxQueue?: number;
  /** Largest event accepted by `emit`, in bytes of JSON. Default 256 KiB. */
  maxEventBytes?: number;
  /** Milliseconds before a request is given up. Default 10000. */
  requestTimeout?: number;
  /** Milliseconds a boot call may take, including sending what was emitted before it. Default 2000. */
  bootTimeout?: number;
  /**
   * On SIGTERM or SIGINT, when the host has no handler of its own for it: report active runs
   * interrupted, close within `exitTimeout`, then let the signal end the process. Default true.
   */
  handleSignals?: boolean;
  /** Milliseconds the signal handler may spend closing. Default 2000. */
  exitTimeout?: number;
  /** First retry delay after lookoutd could not be reached, in ms; doubles up to `retryMax`. Default 500. */
  retryInitial?: number;
  /** Longest retry delay in ms. Default 10000. */
  retryMax?: number;
  /**
   * Told about problems (category: "down", "up", "rejected", "invalid", "spool", "config", …).
   * Default: `console.warn`, at most once a minute per category; `null` silences.
   */
  onError?: ((category: string, message: string) => void) | null;
  /** The fetch to use. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

export interface LookoutStats {
  /** Calls of `emit` (and of the helpers). */
  emitted: number;
  /** Events lookoutd acknowledged (a replay of one it already had counts again). */
  sent: number;
  /** Events lookoutd refused with a 400 (dropped; the others of their batch were kept). */
  rejected: number;
  /** Events `emit` could not queue (no kind, not JSON, too large). */
  invalid: number;
  /** Dropped because the in-memory queue was full. */
  droppedQueueFull: number;
  /** Dropped because the spool was full (oldest first). */
  droppedSpoolFull: number;
  /** Emitted after `close()`. */
  droppedAfterClose: number;
  /** Every event that will never reach lookoutd: the five above together. */
  dropped: number;
  /** Requests that found lookoutd unreachable (network error, timeout, 5xx, 401, …). */
  failedAttempts: number;
  /** Warnings in lookoutd's answers (e.g. a run_heartbeat for a run it never saw start). */
  warnings: number;
  lastError: string | null;
  lastRejection: string | null;
  lastWarning: string | null;
  /** "up" after a delivery, "down" after a failed one, "unknown" before the first. */
  state: "unknown" | "up" | "down";
  url: string;
  /** Events in memory (queued or in flight). */
  queued: number;
  /** Events in the spool. */
  spooled: number;
  spoolBytes: number;
  spoolKind: "memory" | "file";
}

/** Fields of any event beyond the typed ones: kept by lookoutd as payload. */
export type Extra = { [field: string]: unknown };

export interface ChannelFields extends Extra {
  channel: string;
  reason?: unknown;
}

export interface MessageReceivedFields extends Extra {
  channel: string;
  chatJid: string;
  messageId: string;
  /** When the message was received. Default: now. */
  timestamp?: Time;
  sender?: string;
  group?: string;
}

export interface MessagesRecoveredFields extends Extra {
  channel: string;
  messageIds: string[];
  chatJid?: string;
  group?: string;
}

export interface BatchDispatchedFields extends Extra {
  chatJid: string;
  messageIds: string[];
  runId?: string;
  group?: string;
}

export interface BotResponseFields extends Extra {
  chatJid: string;
  /** Default: now. */
  timestamp?: Time;
  runId?: string;
  messageId?: string;
  channel?: string;
}

export interface DeliveryFields extends Extra {
  deliveryId: string;
  chatJid: string;
  error?: unknown;
  channel?: string;
}

export type RunKind = "message" | "task";

export interface RunStartedFields extends Extra {
  runId: string;
  group: string;
  kind: RunKind;
  /** The task's name. */
  task?: string;
  /** The container the run is in: Lookout watches it too. */
  container?: string;
  pid?: number;
  /** false: the host will send no heartbeats (Lookout watches the container or pid instead). */
  heartbeats?: boolean;
}

export interface RunHeartbeatFields extends Extra {
  runId: string;
  progress?: unknown;
  note?: unknown;
}

export type RunOutcome = "success" | "failed" | "interrupted";

export interface RunFinishedFields extends Extra {
  runId: string;
  outcome?: RunOutcome | string;
  error?: unknown;
  note?: unknown;
  progress?: unknown;
}

export interface ContainerStatusFields extends Extra {
  container: string;
  status: string;
}

export interface TargetFields extends Extra {
  target: string;
  sha?: string;
}

export interface DeployFields extends Extra {
  sha: string;
  commitMessage?: string;
}

export interface TaskScheduledFields extends Extra {
  task: string;
  /** Absent: the task is no longer scheduled. */
  nextRun?: Time;
  group?: string;
  graceSecs?: number;
}

export interface RunOptions extends Extra {
  /** Default: a random UUID. */
  runId?: string;
  group: string;
  kind: RunKind;
  task?: string;
  container?: string;
  pid?: number;
  /** Aborted when the run fails: the outcome is "interrupted". Also given to the block as `run.signal`. */
  signal?: AbortSignal;
  /** This run's heartbeat interval in ms. Default: the client's `heartbeatInterval`. */
  heartbeatInterval?: number;
}

/** A run in progress, as given to the block of `Lookout.run`. */
export declare class Run {
  readonly id: string;
  readonly signal: AbortSignal | undefined;
  /**
   * Records progress (a step count, the last tool call, a token count: anything that changes while
   * the run makes progress); every heartbeat carries the latest. Sends one now at most once a second.
   */
  progress(progress: unknown, note?: unknown): void;
  /** Sends a run_heartbeat now. */
  heartbeat(fields?: Extra): boolean;
}

export interface BootBeginAnswer {
  previous_failed: FailedStart | null;
  failed_starts: number;
  crash_loop: unknown | null;
  [field: string]: unknown;
}

export interface FailedStart {
  pid: number | null;
  version: string | null;
  started_at: string;
  detected_at: string;
  cause: string | null;
  cause_source: string;
  [field: string]: unknown;
}

export interface BootReport {
  service: string;
  failed_starts: number;
  last_cause: string | null;
  failures: FailedStart[];
  /** "⚠️ Service recovered after N failed start(s). Last failure: …", or null after a clean start. */
  message: string | null;
  [field: string]: unknown;
}

export interface HeartbeatHandle {
  stop(): void;
}

export declare class Lookout {
  constructor(options?: LookoutOptions);
  readonly url: string;
  readonly heartbeatInterval: number;

  /**
   * Queues `{kind, ...fields}` with `at` (now) and an `idempotency_key` unless given. Returns at
   * once and never throws; false when the event was not queued (invalid, or the client closed).
   */
  emit(kind: string, fields?: Extra): boolean;

  channelConnected(fields: ChannelFields): boolean;
  channelDisconnected(fields: ChannelFields): boolean;
  messageReceived(fields: MessageReceivedFields): boolean;
  messagesRecovered(fields: MessagesRecoveredFields): boolean;
  batchDispatched(fields: BatchDispatchedFields): boolean;
  botResponse(fields: BotResponseFields): boolean;
  deliveryQueued(fields: DeliveryFields): boolean;
  deliverySent(fields: DeliveryFields): boolean;
  deliveryFailed(fields: DeliveryFields): boolean;
  /**
   * The channel confirmed the delivery reached the chat. Once a host sends its first
   * confirmation, lookoutd warns about a later sent delivery with none within
   * `thresholds.confirm_within`.
   */
  deliveryConfirmed(fields: DeliveryFields): boolean;
  runStarted(fields: RunStartedFields): boolean;
  runHeartbeat(fields: RunHeartbeatFields): boolean;
  runFinished(fields: RunFinishedFields): boolean;
  containerStatus(fields: ContainerStatusFields): boolean;
  heartbeat(fields: TargetFields): boolean;
  versionStamp(fields: TargetFields): boolean;
  deploy(fields: DeployFields): boolean;
  taskScheduled(fields: TaskScheduledFields): boolean;

  /** A `heartbeat` for `target` now and every `interval` ms, from a timer that never keeps the process alive. */
  startHeartbeat(fields: TargetFields & { interval?: number }): HeartbeatHandle;

  /**
   * Runs `fn` as one run: run_started; a run_heartbeat every interval while it runs; run_finished
   * with outcome success, failed (with the error's message) or interrupted (the signal aborted, or
   * an error named AbortError). Resolves with fn's value, rejects with fn's error.
   */
  run<T>(options: RunOptions, fn: (run: Run) => T | Promise<T>): Promise<T>;

  /** `POST /api/boot/begin`. Null when lookoutd could not answer (then a boot_started event is queued). Never rejects. */
  bootBegin(fields: { service: string; version?: string; pid?: number }): Promise<BootBeginAnswer | null>;
  /** `POST /api/boot/ready`: the boot report. Null when lookoutd could not answer (then a boot_ready event is queued). */
  bootReady(fields: { service: string }): Promise<BootReport | null>;
  /** `POST /api/boot/fail`: this start failed with `cause`. Null when lookoutd could not answer. */
  bootFail(fields: { service: string; cause: string }): Promise<BootBeginAnswer | null>;

  /** True once everything emitted before the call is delivered (or refused); false at the deadline. Never rejects. */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Active runs end interrupted, then flush; the rest stays in the spool on disk. Resolves like flush. */
  close(timeoutMs?: number): Promise<boolean>;
  stats(): LookoutStats;
}

export declare const VERSION: string;
export default Lookout;
