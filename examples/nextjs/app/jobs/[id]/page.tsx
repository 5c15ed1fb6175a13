import { JobView } from "./job-view";

/** /jobs/<id>: one job, followed live (the id comes from the URL; RLS shows only the signed-in user's jobs). */
export default async function JobPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <JobView jobId={id} />;
}
