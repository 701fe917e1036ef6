//! The fold: [`apply`] one event to the state.

use super::{
    Batch, Boot, Channel, Container, Delivery, Event, HostEvent, HostState, MEMORY, PendingNotice,
    Run,
};

/// Folds one event into the state. Idempotent by seq: an event with `seq <= state.last_seq` is
/// ignored.
pub fn apply(state: &mut HostState, event: &HostEvent) {
    if event.seq <= state.last_seq {
        return;
    }
    state.last_seq = event.seq;
    state.last_event_at = Some(state.last_event_at.map_or(event.at, |t| t.max(event.at)));
    let at = event.at;
    if !state.notices.is_empty() {
        let horizon = at - MEMORY;
        state.notices.retain(|_, n| n.at >= horizon);
    }
    match &event.fact {
        Event::ChannelConnected { channel, .. } => {
            state.channels.insert(
                channel.clone(),
                Channel {
                    connected: true,
                    since: at,
                    reason: None,
                },
            );
        }
        Event::ChannelDisconnected { channel, reason } => {
            let c = state.channels.entry(channel.clone()).or_insert(Channel {
                connected: false,
                since: at,
                reason: None,
            });
            if c.connected {
                c.connected = false;
                c.since = at;
            }
            c.reason.clone_from(reason);
        }
        Event::MessageReceived {
            channel,
            chat_jid,
            message_id,
            group,
            ..
        } => {
            let chat = state.chats.entry(chat_jid.clone()).or_default();
            chat.channel = Some(channel.clone());
            if group.is_some() {
                chat.group.clone_from(group);
            }
            chat.last_message_at = Some(at);
            state.remember(message_id, at);
        }
        Event::MessagesRecovered {
            channel,
            chat_jid,
            group,
            message_ids,
        } => {
            let mut fresh = Vec::new();
            for id in message_ids {
                if !state.knows_message(id) && !fresh.contains(id) {
                    fresh.push(id.clone());
                }
            }
            for id in &fresh {
                state.remember(id, at);
            }
            let chat_group = chat_jid
                .as_ref()
                .and_then(|c| state.chats.get(c))
                .and_then(|c| c.group.clone());
            if !fresh.is_empty() {
                let group = group
                    .clone()
                    .or(chat_group)
                    .or_else(|| chat_jid.clone())
                    .unwrap_or_else(|| channel.clone());
                state.notices.insert(
                    format!("recovered:{}", event.seq),
                    PendingNotice {
                        seq: event.seq,
                        at,
                        group,
                        channel: channel.clone(),
                        chat_jid: chat_jid.clone(),
                        message_ids: fresh,
                    },
                );
            }
        }
        Event::BatchDispatched {
            chat_jid,
            message_ids,
            run_id,
            group,
        } => {
            let chat = state.chats.entry(chat_jid.clone()).or_default();
            if group.is_some() {
                chat.group.clone_from(group);
            }
            match &mut chat.in_flight {
                Some(b) => {
                    for id in message_ids {
                        if !b.message_ids.contains(id) {
                            b.message_ids.push(id.clone());
                        }
                    }
                    if run_id.is_some() {
                        b.run_id.clone_from(run_id);
                    }
                }
                None => {
                    chat.in_flight = Some(Batch {
                        message_ids: message_ids.clone(),
                        run_id: run_id.clone(),
                        since: at,
                    });
                }
            }
        }
        Event::BotResponse { chat_jid, .. } => {
            let chat = state.chats.entry(chat_jid.clone()).or_default();
            chat.in_flight = None;
            chat.last_response_at = Some(at);
        }
        Event::DeliveryQueued {
            delivery_id,
            chat_jid,
            channel,
        } => {
            let known_channel = state.chats.get(chat_jid).and_then(|c| c.channel.clone());
            state
                .deliveries
                .entry(delivery_id.clone())
                .or_insert(Delivery {
                    chat_jid: chat_jid.clone(),
                    channel: channel.clone().or(known_channel),
                    queued_at: at,
                    failures: 0,
                    last_error: None,
                });
        }
        Event::DeliverySent { delivery_id, .. } => {
            state.deliveries.remove(delivery_id);
        }
        Event::DeliveryFailed {
            delivery_id,
            chat_jid,
            error,
        } => {
            let d = state
                .deliveries
                .entry(delivery_id.clone())
                .or_insert(Delivery {
                    chat_jid: chat_jid.clone(),
                    channel: None,
                    queued_at: at,
                    failures: 0,
                    last_error: None,
                });
            d.failures += 1;
            d.last_error.clone_from(error);
        }
        Event::RunStarted(r) | Event::RunHeartbeat(r) => {
            let started = matches!(event.fact, Event::RunStarted(_));
            let run = state.runs.entry(r.run_id.clone()).or_insert(Run {
                group: r.group.clone(),
                run_kind: r.run_kind.clone(),
                task: r.task.clone(),
                container: r.container.clone(),
                pid: r.pid,
                started_at: at,
                last_heartbeat_at: at,
                progress: None,
                progress_value: None,
                progress_changed_at: None,
                heartbeats: r.heartbeats,
            });
            if started {
                run.heartbeats = r.heartbeats;
            }
            run.last_heartbeat_at = run.last_heartbeat_at.max(at);
            if r.container.is_some() {
                run.container.clone_from(&r.container);
            }
            if r.pid.is_some() {
                run.pid = r.pid;
            }
            if r.progress.is_some() {
                run.progress.clone_from(&r.progress);
            }
            // I8: absent progress is "not reported" (no change, no evidence of a stall); a value
            // different from the last one reported (or the first one) is a change.
            if let Some(p) = &r.progress_value
                && run.progress_value.as_ref() != Some(p)
            {
                run.progress_value = Some(p.clone());
                run.progress_changed_at = Some(at);
            }
            if started && let Some(task) = &r.task {
                let t = state.tasks.entry(task.clone()).or_default();
                t.group.get_or_insert_with(|| r.group.clone());
                t.last_started_at = Some(t.last_started_at.map_or(at, |s| s.max(at)));
            }
        }
        Event::RunFinished(r) => {
            state.runs.remove(&r.run_id);
            if let Some(task) = &r.task {
                let t = state.tasks.entry(task.clone()).or_default();
                t.last_finished = Some((at, r.outcome.clone()));
            }
        }
        Event::ContainerStatus { container, status } => {
            let c = state
                .containers
                .entry(container.clone())
                .or_insert(Container {
                    status: status.clone(),
                    since: at,
                });
            if &c.status != status {
                c.status.clone_from(status);
                c.since = at;
            }
        }
        Event::BootStarted { service, version } => {
            let prior = state.boots.get(service);
            let starts = match prior {
                Some(b) if b.ready_at.is_none() => b.starts_since_ready + 1,
                _ => 1,
            };
            state.boots.insert(
                service.clone(),
                Boot {
                    started_at: at,
                    version: version.clone(),
                    ready_at: None,
                    starts_since_ready: starts,
                },
            );
        }
        Event::BootReady { service } => {
            let b = state.boots.entry(service.clone()).or_insert(Boot {
                started_at: at,
                version: None,
                ready_at: None,
                starts_since_ready: 1,
            });
            b.ready_at = Some(at);
        }
        Event::TargetSeen {
            target,
            sha,
            heartbeat,
        } => {
            let t = state.targets.entry(target.clone()).or_default();
            if *heartbeat {
                t.last_heartbeat_at = Some(at);
            }
            if sha.is_some() {
                t.sha.clone_from(sha);
            }
        }
        Event::Deploy { sha, .. } => state.last_deploy = Some((sha.clone(), at)),
        Event::TaskScheduled {
            task,
            group,
            next_run,
            grace_secs,
        } => {
            let t = state.tasks.entry(task.clone()).or_default();
            if group.is_some() {
                t.group.clone_from(group);
            }
            t.next_run = *next_run;
            t.grace_secs = *grace_secs;
        }
        // A confirmation is the flow checks' (`flow::confirm`); the host model's deliveries end
        // at `delivery_sent`.
        Event::DeliveryConfirmed { .. } | Event::Other { .. } => {}
    }
}
