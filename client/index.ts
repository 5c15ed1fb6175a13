/**
 * @tenkaigen/client: the TenkaiGen frontend flow on supabase-js (no React needed). React hooks are in
 * `@tenkaigen/client/react`; the generated schema types in `@tenkaigen/client/database.types`.
 */
export * from "./generation_jobs";
export * from "./tenkaigen_client";
export * from "./uploads";
export * from "./job_store";
