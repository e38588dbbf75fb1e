//! A ping/push notification endpoint (CIBA Core §10.2–§10.3) that records
//! every call and answers as the test says.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::sync::watch;

/// How the receiver answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `204 No Content`.
    Accept,
    /// `500` to the first `n` calls, then `204`.
    FailFirst(usize),
    /// `307` to this URL, every time.
    Redirect(String),
    /// Holds every call until [`Receiver::release`], then `204`.
    Hold,
}

/// One call the server made.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The `Authorization: Bearer` token (the client notification token).
    pub bearer: Option<String>,
    /// The JSON body (`auth_req_id`, and the tokens for push).
    pub body: Value,
    /// What the receiver answered (0 while held).
    pub status: u16,
}

#[derive(Clone)]
struct Shared {
    answer: Answer,
    hits: Arc<Mutex<Vec<Hit>>>,
    released: watch::Receiver<bool>,
}

/// A notification endpoint at `http://127.0.0.1:<port>/ciba/notify`, served
/// in this test process until dropped.
pub struct Receiver {
    /// The URL to register as `backchannel_client_notification_endpoint`.
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    release: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts listening on a free port.
    pub async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a receiver");
        let url = format!("http://{}/ciba/notify", listener.local_addr().expect("its address"));
        let (release, released) = watch::channel(false);
        let hits = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            answer,
            hits: Arc::clone(&hits),
            released,
        };
        let app = Router::new().fallback(notify).with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            hits,
            release,
            task,
        }
    }

    /// Every call so far, in order.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("the receiver's record").clone()
    }

    /// The calls for `auth_req_id`.
    pub fn hits_for(&self, auth_req_id: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.body["auth_req_id"] == auth_req_id)
            .collect()
    }

    /// Lets held calls (and every later one) through.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn notify(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let index = {
        let mut hits = shared.hits.lock().expect("the receiver's record");
        hits.push(Hit {
            bearer,
            body,
            status: 0,
        });
        hits.len() - 1
    };
    let response = match &shared.answer {
        Answer::Accept => StatusCode::NO_CONTENT.into_response(),
        Answer::FailFirst(n) if index < *n => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Answer::FailFirst(_) => StatusCode::NO_CONTENT.into_response(),
        Answer::Redirect(to) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to.clone())]).into_response(),
        Answer::Hold => {
            let mut released = shared.released.clone();
            let _ = released.wait_for(|released| *released).await;
            StatusCode::NO_CONTENT.into_response()
        }
    };
    if let Some(hit) = shared.hits.lock().expect("the receiver's record").get_mut(index) {
        hit.status = response.status().as_u16();
    }
    response
}
