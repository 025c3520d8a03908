//! A stand-in Kubernetes API server for the `kubernetes:` source: it serves
//! the EndpointSlices of one namespace over plain HTTP as the API server
//! does (a list with a resourceVersion, then a watch stream of one JSON
//! event per line), and the test drives it: events, a watch that breaks, a
//! 410 Gone that forces a re-list, a first list held back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::wait_until;

#[derive(Default)]
struct State {
    slices: BTreeMap<String, Value>,
    resource_version: u64,
    lists: u32,
    watches: u32,
    watch: Option<mpsc::UnboundedSender<Bytes>>,
    gone_next_watch: bool,
    hold_lists: bool,
    requests: Vec<String>,
}

/// The stand-in API server, running on a thread of its own.
#[derive(Clone)]
pub struct StandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// A Kubernetes Status, as the API server sends it.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

impl StandIn {
    /// Starts it with no slices.
    pub fn start() -> StandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            resource_version: 100,
            ..State::default()
        }));
        let server = StandIn { addr, state };
        let this = server.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let this = this.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let this = this.clone();
                            async move { Ok::<_, Infallible>(this.answer(req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        server
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("stand-in state")
    }

    /// A kubeconfig file in `dir` that points kube at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: http://{}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: shop\ncurrent-context: standin\nusers:\n- name: standin\n  user: {{}}\n",
                self.addr
            ),
        )
        .expect("write kubeconfig");
        path
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<BoxBody<Bytes, Infallible>> {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        self.state()
            .requests
            .push(format!("{} {path}?{query}", req.method()));
        if path != "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices" {
            return json_response(
                404,
                &status(404, "NotFound", &format!("the stand-in serves no {path}")),
            );
        }
        if !query.contains("labelSelector=kubernetes.io%2Fservice-name%3Dweb") {
            return json_response(
                400,
                &status(
                    400,
                    "BadRequest",
                    "expected the service-name label selector",
                ),
            );
        }
        if query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1")
        {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut st = self.state();
            st.watches += 1;
            if std::mem::take(&mut st.gone_next_watch) {
                // The API server no longer has the version asked for.
                let rv = st.resource_version;
                let event = json!({"type": "ERROR", "object": status(410, "Expired", &format!("too old resource version: 100 ({rv})"))});
                let _ = tx.send(Bytes::from(format!("{event}\n")));
            } else {
                st.watch = Some(tx);
            }
            return Response::builder()
                .header("content-type", "application/json")
                .body(Events(rx).boxed())
                .expect("response");
        }
        // A list: held back while the test says so.
        while self.state().hold_lists {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut st = self.state();
        st.lists += 1;
        let items: Vec<Value> = st
            .slices
            .values()
            .map(|s| {
                // Items of a list carry no kind and apiVersion.
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    o.remove("kind");
                    o.remove("apiVersion");
                }
                s
            })
            .collect();
        let list = json!({"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
                          "metadata": {"resourceVersion": st.resource_version.to_string()}, "items": items});
        json_response(200, &list)
    }

    /// Holds lists back (true) or lets them through.
    pub fn hold_lists(&self, hold: bool) {
        self.state().hold_lists = hold;
    }

    /// Puts `slice` in the store without telling any watch (what a watch
    /// that is down misses).
    pub fn set_quietly(&self, slice: Value) {
        let mut st = self.state();
        st.resource_version += 1;
        let slice = with_version(slice, st.resource_version);
        st.slices.insert(name_of(&slice), slice);
    }

    /// Removes a slice without telling any watch.
    pub fn remove_quietly(&self, name: &str) {
        let mut st = self.state();
        st.resource_version += 1;
        st.slices.remove(name);
    }

    /// Stores `slice` and sends `kind` (ADDED, MODIFIED, DELETED) with it on
    /// the open watch.
    pub fn event(&self, kind: &str, slice: Value) {
        let mut st = self.state();
        st.resource_version += 1;
        let slice = with_version(slice, st.resource_version);
        let name = name_of(&slice);
        if kind == "DELETED" {
            st.slices.remove(&name);
        } else {
            st.slices.insert(name, slice.clone());
        }
        let line = Bytes::from(format!("{}\n", json!({"type": kind, "object": slice})));
        let sent = st.watch.as_ref().is_some_and(|w| w.send(line).is_ok());
        assert!(sent, "no watch is open to send {kind} on");
    }

    /// Ends the open watch stream, as an API server restart or a load
    /// balancer's idle timeout does.
    pub fn break_watch(&self) {
        self.state().watch = None;
    }

    /// Makes the next watch fail with 410 Gone (an ERROR event).
    pub fn gone_next_watch(&self) {
        self.state().gone_next_watch = true;
    }

    /// Lists served so far.
    pub fn lists(&self) -> u32 {
        self.state().lists
    }

    /// Watches opened so far.
    pub fn watches(&self) -> u32 {
        self.state().watches
    }

    /// Waits until a watch is open and `n` were opened in all.
    pub fn wait_watch(&self, n: u32) {
        wait_until(&format!("watch number {n} to be open"), || {
            let st = self.state();
            st.watches >= n && st.watch.as_ref().is_some_and(|w| !w.is_closed())
        });
    }

    /// Every request seen, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }
}

fn name_of(slice: &Value) -> String {
    slice["metadata"]["name"]
        .as_str()
        .expect("a named slice")
        .to_owned()
}

fn with_version(mut slice: Value, rv: u64) -> Value {
    slice["metadata"]["resourceVersion"] = json!(rv.to_string());
    slice
}

fn json_response(code: u16, body: &Value) -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

/// A watch stream: one JSON event per chunk, until the sender is dropped.
struct Events(mpsc::UnboundedReceiver<Bytes>);

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// An EndpointSlice of Service `web` as the API server returns it: port
/// `tcp`, endpoints as `(pod, ip, conditions)` with conditions left out
/// where None.
pub fn slice(name: &str, port: u16, endpoints: &[(&str, &str, [Option<bool>; 3])]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(pod, ip, [ready, serving, terminating])| {
            let mut e = json!({"addresses": [ip], "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod}, "nodeName": "node-1"});
            let mut c = serde_json::Map::new();
            for (k, v) in [("ready", ready), ("serving", serving), ("terminating", terminating)] {
                if let Some(v) = v {
                    c.insert(k.into(), json!(v));
                }
            }
            e["conditions"] = Value::Object(c);
            e
        })
        .collect();
    json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "namespace": "shop", "generateName": "web-",
                     "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}
