/**
 * React bindings: `<TenkaigenProvider supabase={…}>`, `useGenerationJob(jobId)` and `useGenerate()`.
 *
 * Each hook subscribes on mount and unsubscribes on unmount (useEffect cleanup); the provider's client leaves the
 * user's Realtime channel when the last subscriber is gone. After a reconnect the channel re-selects the jobs it
 * follows; nothing polls. The hooks are thin: the behaviour lives in client/job_store.ts, which the tests drive.
 * Client components only ("use client"): they need the signed-in browser client (`@supabase/ssr`'s
 * `createBrowserClient`).
 */
import {
  createContext,
  createElement,
  type ReactNode,
  useContext,
  useEffect,
  useMemo,
  useSyncExternalStore,
} from "react";
import { type GenerateSnapshot, GenerateStore, type JobSnapshot, JobStore } from "./job_store";
import {
  type CancelResult,
  type GenerateInput,
  TenkaigenClient,
  type TenkaigenClientOptions,
  type TenkaigenSupabase,
} from "./tenkaigen_client";

const TenkaigenContext = createContext<TenkaigenClient | null>(null);

/** Props of {@link TenkaigenProvider}. */
export interface TenkaigenProviderProps {
  /** The signed-in browser client: `createBrowserClient<Database>(url, publishableKey)`. */
  supabase: TenkaigenSupabase;
  options?: Omit<TenkaigenClientOptions, "leaveWhenIdle">;
  children?: ReactNode;
}

/** Makes one TenkaigenClient (one Realtime channel per user) available to the hooks below it. */
export function TenkaigenProvider(props: TenkaigenProviderProps): ReactNode {
  const { supabase, options, children } = props;
  const client = useMemo(
    () => new TenkaigenClient(supabase, { ...options, leaveWhenIdle: true }),
    // options are read once per supabase client
    [supabase],
  );
  useEffect(() => () => void client.close(), [client]);
  return createElement(TenkaigenContext.Provider, { value: client }, children);
}

/** The provider's TenkaigenClient (for the calls the hooks do not wrap: queuePosition, uploads …). */
export function useTenkaigen(): TenkaigenClient {
  const client = useContext(TenkaigenContext);
  if (!client) {
    throw new Error(
      "useTenkaigen: no TenkaigenProvider above this component; wrap the app in " +
        "<TenkaigenProvider supabase={createBrowserClient<Database>(…)}>",
    );
  }
  return client;
}

const NO_JOB: JobSnapshot = { jobId: null, loading: false, job: null, outcome: null, error: null };
const noSubscription = (): () => void => () => {};
const noJob = (): JobSnapshot => NO_JOB;

/** What {@link useGenerationJob} returns. */
export interface GenerationJobState extends JobSnapshot {
  cancel(): Promise<CancelResult | null>;
}

/**
 * Follows one of the signed-in user's jobs: its latest state (`job`), how it ended (`outcome`, with a signed URL
 * of the image), or why it cannot be followed (`error`). `null` follows nothing.
 */
export function useGenerationJob(jobId: string | null): GenerationJobState {
  const client = useTenkaigen();
  const store = useMemo(() => (jobId ? new JobStore(client, jobId) : null), [client, jobId]);
  useEffect(() => {
    if (!store) return;
    store.start();
    return () => store.stop();
  }, [store]);
  const snapshot = useSyncExternalStore(
    store?.subscribe ?? noSubscription,
    store?.getSnapshot ?? noJob,
    store?.getSnapshot ?? noJob,
  );
  return useMemo(
    () => ({ ...snapshot, cancel: () => store ? store.cancel() : Promise.resolve(null) }),
    [snapshot, store],
  );
}

/** What {@link useGenerate} returns. */
export interface GenerateState extends GenerateSnapshot {
  /** parse-prompt → insert → follow. Errors land in `error` (a ValidationError names its `field`). */
  generate(input: GenerateInput): Promise<void>;
  cancel(): Promise<CancelResult | null>;
  reset(): void;
}

/** The hero flow for one component: one generation at a time, followed until it ends or the component unmounts. */
export function useGenerate(): GenerateState {
  const client = useTenkaigen();
  const store = useMemo(() => new GenerateStore(client), [client]);
  useEffect(() => {
    store.start();
    return () => store.stop();
  }, [store]);
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(
    () => ({
      ...snapshot,
      generate: (input: GenerateInput) => store.generate(input),
      cancel: () => store.cancel(),
      reset: () => store.reset(),
    }),
    [snapshot, store],
  );
}
