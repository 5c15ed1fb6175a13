"use client";

import { TenkaigenProvider } from "@tenkaigen/client/react";
import { type ReactNode, useState } from "react";
import { createClient } from "@/lib/supabase/client";

/** One browser Supabase client and one TenkaiGen client (one Realtime channel) for the whole app. */
export function Providers({ children }: { children: ReactNode }) {
  const [supabase] = useState(createClient);
  return <TenkaigenProvider supabase={supabase}>{children}</TenkaigenProvider>;
}
