import { Migration } from "@mikro-orm/migrations";

/**
 * Operations: an index for pruning old webhook deliveries by age, and
 * `podflow_apply_task_events` also says, per event, the task's type and the status it moved to
 * (null when the status did not change), for the `podflow_task_transitions_total` metric. The
 * rules are unchanged (see Migration20261202030000_apply_task_events); a new result column needs
 * the function dropped and created again, in this one transaction.
 */
export class Migration20261202130000_operations extends Migration {
  override name = "Migration20261202130000_operations";

  override up(): void | Promise<void> {
    this.addSql(
      `create index if not exists "webhook_deliveries_received_at_index" on "webhook_deliveries" ("received_at");`,
    );
    this.addSql("drop function if exists podflow_apply_task_events(jsonb);");
    this.addSql(`create function podflow_apply_task_events(events jsonb)
      returns table (ord int, outcome text, episode_id uuid, queue_completion boolean,
                     task_type text, moved_to text)
      language plpgsql as $$
      declare
        ev record;
        t processing_tasks%rowtype;
        ep episodes%rowtype;
        incoming text;
        incoming_progress int;
        output jsonb;
        changed boolean;
        recorded int;
      begin
        -- Every episode the batch touches is locked first, in id order, so batches running at
        -- the same time (on this instance or another) never wait for each other in a cycle.
        perform 1 from episodes e
          where e.id in (select pt.episode_id from processing_tasks pt
                          where pt.engine_task_id in
                            (select x ->> 'taskId' from jsonb_array_elements(events) x))
          order by e.id
          for update;

        for ev in
          select x.value as v, x.ordinality::int as i
            from jsonb_array_elements(events) with ordinality as x
        loop
          ord := ev.i;
          episode_id := null;
          queue_completion := false;
          task_type := null;
          moved_to := null;
          select * into t from processing_tasks where engine_task_id = ev.v ->> 'taskId' for update;
          if not found then
            outcome := 'ignored';
            return next;
            continue;
          end if;
          episode_id := t.episode_id;
          task_type := t.type;
          changed := false;
          incoming := ev.v ->> 'status';
          incoming_progress := (ev.v ->> 'progress')::int;
          output := nullif(ev.v -> 'output', 'null'::jsonb);

          -- Forward only: status by rank; a completion is 100 %; an end other than success
          -- carries its reason.
          if podflow_task_rank(incoming) > podflow_task_rank(t.status) then
            t.status := incoming;
            changed := true;
            moved_to := incoming;
            if incoming = 'COMPLETED' then t.progress := 100; end if;
            if incoming in ('FAILED', 'SKIPPED') then
              t.error_message := coalesce(ev.v ->> 'error',
                'the engine reported the task ' || (ev.v ->> 'rawStatus'));
            end if;
          end if;
          -- Progress only up, and only while the task runs.
          if incoming_progress is not null and podflow_task_rank(t.status) < 2
             and (t.progress is null or incoming_progress > t.progress) then
            t.progress := incoming_progress;
            changed := true;
          end if;
          -- A completion may come first without its output and again with it.
          if t.status = 'COMPLETED' and incoming = 'COMPLETED' and output is not null then
            if t.output_file_id is null and output ->> 'fileId' is not null then
              t.output_file_id := output ->> 'fileId';
              changed := true;
            end if;
            if t.output_url is null and output ->> 'url' is not null then
              t.output_url := output ->> 'url';
              changed := true;
            end if;
            if changed and (output ->> 'kind' is not null or output ->> 'type' is not null) then
              t.metadata := coalesce(t.metadata, '{}'::jsonb)
                || jsonb_build_object('outputKind', output -> 'kind', 'outputType', output -> 'type');
            end if;
          end if;

          if changed then
            update processing_tasks
               set status = t.status, progress = t.progress, error_message = t.error_message,
                   output_file_id = t.output_file_id, output_url = t.output_url,
                   metadata = t.metadata, updated_at = now()
             where id = t.id;
            -- An end, or the output of an ended task, may be the last thing the episode waited
            -- for: mark its completion once per processing round (the caller queues the job in
            -- this transaction).
            if podflow_task_rank(t.status) = 2 then
              select * into ep from episodes where id = t.episode_id;
              if ep.status = 'PROCESSING' and ep.completion_queued_round < ep.processing_round
                 and (select count(*) = 4 and bool_and(
                               (latest.status = 'COMPLETED' and latest.output_url is not null)
                               or latest.status = 'SKIPPED'
                               or (latest.status = 'FAILED' and latest.round >= ep.processing_round))
                        from (select distinct on (pt.type) pt.status, pt.output_url, pt.round
                                from processing_tasks pt
                               where pt.episode_id = ep.id
                               order by pt.type, pt.attempt desc) latest)
              then
                update episodes set completion_queued_round = processing_round, updated_at = now()
                 where id = ep.id;
                queue_completion := true;
              end if;
            end if;
          end if;

          -- The inbox, written after applying and in the same transaction: a delivery seen
          -- before found nothing to change (transitions only move forward).
          if ev.v ->> 'deliveryId' is not null then
            insert into webhook_deliveries (id, ittybit_task_id, received_at, payload, outcome)
            values (ev.v ->> 'deliveryId', t.engine_task_id, now(), ev.v -> 'payload',
                    case when changed then 'applied' else 'stale' end)
            on conflict (id) do nothing;
            get diagnostics recorded = row_count;
            if recorded = 0 then
              if changed then
                raise exception 'delivery % was recorded by a transaction that did not apply it',
                  ev.v ->> 'deliveryId';
              end if;
              outcome := 'duplicate';
              return next;
              continue;
            end if;
          end if;
          outcome := case when changed then 'applied' else 'stale' end;
          return next;
        end loop;
      end $$;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index if exists "webhook_deliveries_received_at_index";`);
    this.addSql("drop function if exists podflow_apply_task_events(jsonb);");
    this.addSql(`create or replace function podflow_apply_task_events(events jsonb)
      returns table (ord int, outcome text, episode_id uuid, queue_completion boolean)
      language plpgsql as $$
      declare
        ev record;
        t processing_tasks%rowtype;
        ep episodes%rowtype;
        incoming text;
        incoming_progress int;
        output jsonb;
        changed boolean;
        recorded int;
      begin
        -- Every episode the batch touches is locked first, in id order, so batches running at
        -- the same time (on this instance or another) never wait for each other in a cycle.
        perform 1 from episodes e
          where e.id in (select pt.episode_id from processing_tasks pt
                          where pt.engine_task_id in
                            (select x ->> 'taskId' from jsonb_array_elements(events) x))
          order by e.id
          for update;

        for ev in
          select x.value as v, x.ordinality::int as i
            from jsonb_array_elements(events) with ordinality as x
        loop
          ord := ev.i;
          episode_id := null;
          queue_completion := false;
          select * into t from processing_tasks where engine_task_id = ev.v ->> 'taskId' for update;
          if not found then
            outcome := 'ignored';
            return next;
            continue;
          end if;
          episode_id := t.episode_id;
          changed := false;
          incoming := ev.v ->> 'status';
          incoming_progress := (ev.v ->> 'progress')::int;
          output := nullif(ev.v -> 'output', 'null'::jsonb);

          -- Forward only: status by rank; a completion is 100 %; an end other than success
          -- carries its reason.
          if podflow_task_rank(incoming) > podflow_task_rank(t.status) then
            t.status := incoming;
            changed := true;
            if incoming = 'COMPLETED' then t.progress := 100; end if;
            if incoming in ('FAILED', 'SKIPPED') then
              t.error_message := coalesce(ev.v ->> 'error',
                'the engine reported the task ' || (ev.v ->> 'rawStatus'));
            end if;
          end if;
          -- Progress only up, and only while the task runs.
          if incoming_progress is not null and podflow_task_rank(t.status) < 2
             and (t.progress is null or incoming_progress > t.progress) then
            t.progress := incoming_progress;
            changed := true;
          end if;
          -- A completion may come first without its output and again with it.
          if t.status = 'COMPLETED' and incoming = 'COMPLETED' and output is not null then
            if t.output_file_id is null and output ->> 'fileId' is not null then
              t.output_file_id := output ->> 'fileId';
              changed := true;
            end if;
            if t.output_url is null and output ->> 'url' is not null then
              t.output_url := output ->> 'url';
              changed := true;
            end if;
            if changed and (output ->> 'kind' is not null or output ->> 'type' is not null) then
              t.metadata := coalesce(t.metadata, '{}'::jsonb)
                || jsonb_build_object('outputKind', output -> 'kind', 'outputType', output -> 'type');
            end if;
          end if;

          if changed then
            update processing_tasks
               set status = t.status, progress = t.progress, error_message = t.error_message,
                   output_file_id = t.output_file_id, output_url = t.output_url,
                   metadata = t.metadata, updated_at = now()
             where id = t.id;
            -- An end, or the output of an ended task, may be the last thing the episode waited
            -- for: mark its completion once per processing round (the caller queues the job in
            -- this transaction).
            if podflow_task_rank(t.status) = 2 then
              select * into ep from episodes where id = t.episode_id;
              if ep.status = 'PROCESSING' and ep.completion_queued_round < ep.processing_round
                 and (select count(*) = 4 and bool_and(
                               (latest.status = 'COMPLETED' and latest.output_url is not null)
                               or latest.status = 'SKIPPED'
                               or (latest.status = 'FAILED' and latest.round >= ep.processing_round))
                        from (select distinct on (pt.type) pt.status, pt.output_url, pt.round
                                from processing_tasks pt
                               where pt.episode_id = ep.id
                               order by pt.type, pt.attempt desc) latest)
              then
                update episodes set completion_queued_round = processing_round, updated_at = now()
                 where id = ep.id;
                queue_completion := true;
              end if;
            end if;
          end if;

          -- The inbox, written after applying and in the same transaction: a delivery seen
          -- before found nothing to change (transitions only move forward).
          if ev.v ->> 'deliveryId' is not null then
            insert into webhook_deliveries (id, ittybit_task_id, received_at, payload, outcome)
            values (ev.v ->> 'deliveryId', t.engine_task_id, now(), ev.v -> 'payload',
                    case when changed then 'applied' else 'stale' end)
            on conflict (id) do nothing;
            get diagnostics recorded = row_count;
            if recorded = 0 then
              if changed then
                raise exception 'delivery % was recorded by a transaction that did not apply it',
                  ev.v ->> 'deliveryId';
              end if;
              outcome := 'duplicate';
              return next;
              continue;
            end if;
          end if;
          outcome := case when changed then 'applied' else 'stale' end;
          return next;
        end loop;
      end $$;`);
  }
}
