import { createBrowserClient } from "@supabase/ssr";
import type { Database } from "@tenkaigen/client/database.types";

/** The browser's Supabase client (session in cookies, via @supabase/ssr), typed with the generated schema. */
export function createClient() {
  return createBrowserClient<Database>(
    process.env.NEXT_PUBLIC_SUPABASE_URL!,
    process.env.NEXT_PUBLIC_SUPABASE_PUBLISHABLE_KEY!,
  );
}
