//! A Telegram Bot API on loopback, as documented (`getUpdates` with `offset` and long-poll
//! `timeout`, `sendMessage`, `answerCallbackQuery`), for lookoutd's telegram sink and its chat
//! commands. Updates below an offset a client asked with are confirmed and never returned again,
//! as Telegram does: a client that forgot its offset gets them again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Default)]
struct Book {
    /// Updates not confirmed yet.
    queue: Vec<Value>,
    next_id: i64,
    /// Every `sendMessage` body.
    sent: Vec<Value>,
    /// Every `answerCallbackQuery` body.
    answered: Vec<Value>,
    /// The `offset` of every `getUpdates` call, in order (`None` when not given).
    offsets: Vec<Option<i64>>,
    /// The server is stopping: long polls end now.
    closed: bool,
}

/// The server; stopped when dropped.
pub struct BotApi {
    /// Its base URL, for `api_url`.
    pub url: String,
    /// The token it accepts.
    pub token: String,
    book: Arc<Mutex<Book>>,
    wake: Arc<tokio::sync::Notify>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BotApi {
    /// Starts on a free port, accepting `token`.
    pub fn start(token: &str) -> BotApi {
        let book = Arc::new(Mutex::new(Book {
            next_id: 1,
            ..Book::default()
        }));
        let wake = Arc::new(tokio::sync::Notify::new());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind bot api");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (b, w, t) = (book.clone(), wake.clone(), token.to_owned());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/{bot}/{method}",
                    axum::routing::post(
                        move |axum::extract::Path((bot, method)): axum::extract::Path<(
                            String,
                            String,
                        )>,
                              body: axum::body::Bytes| {
                            let (b, w, t) = (b.clone(), w.clone(), t.clone());
                            async move { answer(&b, &w, &t, &bot, &method, &body).await }
                        },
                    ),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        BotApi {
            url: format!("http://127.0.0.1:{port}"),
            token: token.to_owned(),
            book,
            wake,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Queues a text message from `user` in `chat`; returns its update id.
    pub fn send_text(&self, chat: i64, user: &str, text: &str) -> i64 {
        self.push(|id| {
            json!({"update_id": id, "message": {
                "message_id": id, "date": 0, "text": text,
                "chat": {"id": chat, "type": "private"},
                "from": {"id": 7000 + chat.rem_euclid(1000), "is_bot": false, "first_name": user, "username": user},
            }})
        })
    }

    /// Queues a press of an inline button whose `callback_data` is `data`, in `chat`.
    pub fn press(&self, chat: i64, user: &str, data: &str) -> i64 {
        self.push(|id| {
            json!({"update_id": id, "callback_query": {
                "id": format!("cb-{id}"), "data": data, "chat_instance": "x",
                "from": {"id": 7000, "is_bot": false, "first_name": user, "username": user},
                "message": {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}, "text": "alert"},
            }})
        })
    }

    fn push(&self, update: impl FnOnce(i64) -> Value) -> i64 {
        let mut b = self.book.lock().unwrap();
        let id = b.next_id;
        b.next_id += 1;
        b.queue.push(update(id));
        drop(b);
        self.wake.notify_waiters();
        id
    }

    /// Every `sendMessage` body so far.
    pub fn sent(&self) -> Vec<Value> {
        self.book.lock().unwrap().sent.clone()
    }

    /// Every `answerCallbackQuery` body so far.
    pub fn answered(&self) -> Vec<Value> {
        self.book.lock().unwrap().answered.clone()
    }

    /// The offsets `getUpdates` was called with, in order.
    pub fn offsets(&self) -> Vec<Option<i64>> {
        self.book.lock().unwrap().offsets.clone()
    }

    /// Waits until `pred` holds for the messages sent, up to `limit`; returns them.
    pub fn wait_sent(&self, limit: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let sent = self.sent();
            if pred(&sent) {
                return sent;
            }
            assert!(
                start.elapsed() < limit,
                "bot api: condition not met within {limit:?}; sent {sent:#?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

async fn answer(
    book: &Mutex<Book>,
    wake: &tokio::sync::Notify,
    token: &str,
    bot: &str,
    method: &str,
    body: &[u8],
) -> (axum::http::StatusCode, axum::Json<Value>) {
    use axum::http::StatusCode;
    if bot.strip_prefix("bot") != Some(token) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"ok": false, "error_code": 400, "description": "Bad Request: body is not JSON"}),
            ),
        );
    };
    match method {
        "getUpdates" => {
            let offset = req["offset"].as_i64();
            let timeout = req["timeout"].as_u64().unwrap_or(0).min(50);
            book.lock().unwrap().offsets.push(offset);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let woken = wake.notified();
                {
                    let mut b = book.lock().unwrap();
                    if let Some(o) = offset {
                        // Confirmed: gone for good.
                        b.queue
                            .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= o);
                    }
                    if b.closed {
                        return (
                            StatusCode::OK,
                            axum::Json(json!({"ok": true, "result": []})),
                        );
                    }
                    if !b.queue.is_empty() {
                        return (
                            StatusCode::OK,
                            axum::Json(json!({"ok": true, "result": b.queue.clone()})),
                        );
                    }
                }
                if tokio::time::timeout_at(deadline, woken).await.is_err() {
                    return (
                        StatusCode::OK,
                        axum::Json(json!({"ok": true, "result": []})),
                    );
                }
            }
        }
        "sendMessage" => {
            if req["chat_id"].is_null() || req["text"].as_str().is_none_or(str::is_empty) {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(
                        json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}),
                    ),
                );
            }
            book.lock().unwrap().sent.push(req.clone());
            (
                StatusCode::OK,
                axum::Json(
                    json!({"ok": true, "result": {"message_id": 1, "date": 0, "chat": {"id": req["chat_id"]}, "text": req["text"]}}),
                ),
            )
        }
        "answerCallbackQuery" => {
            book.lock().unwrap().answered.push(req);
            (
                StatusCode::OK,
                axum::Json(json!({"ok": true, "result": true})),
            )
        }
        other => (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"ok": false, "error_code": 404, "description": format!("Not Found: method {other}")}),
            ),
        ),
    }
}

impl Drop for BotApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // A long poll in flight would end only at its timeout: end it now.
        self.book.lock().unwrap().closed = true;
        self.wake.notify_waiters();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
