-- Storage buckets and folder policies.
--
-- generated-designs (contract): private; the worker uploads <user_id>/<job_id>.png with the service key, so
-- objects have no owner and read access goes by folder: a user reads only generated-designs/<own uid>/<file>.
-- generation-inputs: private; a user uploads, reads, replaces and deletes only generation-inputs/<own uid>/<file>
-- (init images for edit jobs). Policies require exactly one folder level equal to the caller's uid, so paths
-- like `<uid>/../<other uid>/x.png` or `<other uid>/x.png` match nothing. Size and MIME limits are enforced by
-- the Storage server from the bucket row.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('generated-designs', 'generated-designs', false, 20971520, array['image/png']),
       ('generation-inputs', 'generation-inputs', false, 10485760, array['image/png', 'image/jpeg', 'image/webp'])
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

create policy "users read their own generated designs" on storage.objects
  for select to authenticated
  using (bucket_id = 'generated-designs'
         and storage.foldername(name) = array[(select auth.uid())::text]);

create policy "users read their own generation inputs" on storage.objects
  for select to authenticated
  using (bucket_id = 'generation-inputs'
         and storage.foldername(name) = array[(select auth.uid())::text]);

create policy "users upload their own generation inputs" on storage.objects
  for insert to authenticated
  with check (bucket_id = 'generation-inputs'
              and storage.foldername(name) = array[(select auth.uid())::text]
              and storage.filename(name) !~ '^\.');

create policy "users replace their own generation inputs" on storage.objects
  for update to authenticated
  using (bucket_id = 'generation-inputs'
         and storage.foldername(name) = array[(select auth.uid())::text])
  with check (bucket_id = 'generation-inputs'
              and storage.foldername(name) = array[(select auth.uid())::text]
              and storage.filename(name) !~ '^\.');

create policy "users delete their own generation inputs" on storage.objects
  for delete to authenticated
  using (bucket_id = 'generation-inputs'
         and storage.foldername(name) = array[(select auth.uid())::text]);
