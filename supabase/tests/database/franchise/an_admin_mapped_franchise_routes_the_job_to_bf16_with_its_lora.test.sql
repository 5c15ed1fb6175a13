begin;
select plan(7);

select tests.create_supabase_user('alice');
update queue.quota_limits set max_active_jobs = 10 where user_id is null;
insert into queue.franchise_loras (franchise, lora, scale) values
  ('sailor senshi', 'tenkaigen/loras:sailor-senshi.safetensors', 0.8),
  ('retired show', 'tenkaigen/loras:retired.safetensors', 1.0);
update queue.franchise_loras set enabled = false where franchise = 'retired show';

select tests.authenticate_as('alice');
insert into public.generation_jobs (prompt, style, franchise, client_request_id)
values ('a heroine on a rooftop', 'anime', 'Sailor Senshi', 'mapped'),
       ('a heroine on a rooftop', 'anime', 'Unknown Show', 'unmapped'),
       ('a heroine on a rooftop', 'anime', 'Retired Show', 'disabled');

-- TEST: a mapped franchise (matched case-insensitively) runs on bf16 with its LoRA and scale, and the bf16 defaults
select results_eq($$select variant, lora, lora_scale, steps, true_cfg_scale from public.generation_jobs
                    where client_request_id = 'mapped'$$,
                  $$values ('bf16'::text, 'tenkaigen/loras:sailor-senshi.safetensors'::text, 0.8::real, 8, 1.0::real)$$,
                  'a mapped franchise is routed to bf16 with its LoRA');

-- TEST: an unknown or disabled franchise is generated like any job, without a LoRA
select results_eq($$select client_request_id, variant, lora from public.generation_jobs
                    where client_request_id in ('unmapped', 'disabled') order by 1$$,
                  $$values ('disabled'::text, 'lightning-8'::text, null::text),
                           ('unmapped'::text, 'lightning-8'::text, null::text)$$,
                  'unknown and disabled franchises get the style''s variant and no LoRA');

-- TEST: the franchise wins over a variant the client asked for (Nunchaku variants cannot apply a LoRA)
insert into public.generation_jobs (prompt, variant, franchise, client_request_id)
values ('x', 'lightning-4', ' sailor SENSHI ', 'asked-lightning');
select is((select variant from public.generation_jobs where client_request_id = 'asked-lightning'), 'bf16',
          'a client''s Nunchaku variant is overridden by the franchise LoRA');

-- TEST: clients still cannot pick bf16 directly, nor set a LoRA themselves
select throws_ok($$insert into public.generation_jobs (prompt, variant) values ('x', 'bf16')$$, '22023',
                 'variant: unknown variant ''bf16''', 'bf16 is not a client choice without a mapped franchise');
select throws_ok($$insert into public.generation_jobs (prompt, lora) values ('x', 'evil/lora')$$, '42501',
                 'permission denied for table generation_jobs', 'lora is not client-insertable');
select throws_ok($$insert into public.generation_jobs (prompt, franchise) values ('x', repeat('f', 65))$$, '22023',
                 'franchise: must be 1 to 64 characters without control characters',
                 'a malformed franchise is rejected naming the field');
select throws_ok($$select * from queue.franchise_loras$$, '42501', 'permission denied for schema queue',
                 'clients cannot read the LoRA table');

select * from finish();
rollback;
