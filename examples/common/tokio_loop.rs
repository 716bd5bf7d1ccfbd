//! The tokio driver loop: tokio-tungstenite sockets (rustls for `wss://`), tokio timers, and
//! a control channel for commands and the stop signal. Used by `examples/tokio_driver.rs`,
//! the demo (against the real gateway) and `tests/drivers.rs`.
#![allow(dead_code)]

use std::future::{pending, Future};
use std::pin::Pin;

use discord_gateway_proto::{CloseFrame, Message};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::common::{Action, Control, DriverCore, Settings, Summary, CLOSE_GRACE, SEND_TIMEOUT};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

/// Opens a WebSocket (`ws://` or `wss://`).
async fn connect(url: String) -> Result<Ws, String> {
    let tls = crate::common::tls_config()?;
    let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
        url.as_str(),
        None,
        false,
        Some(Connector::Rustls(tls)),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn wait_connect(connecting: &mut Option<Connecting>) -> Result<Ws, String> {
    match connecting {
        Some(attempt) => attempt.await,
        None => pending().await,
    }
}

async fn wait_message(socket: &mut Option<Ws>) -> Option<Result<WsMessage, WsError>> {
    match socket {
        Some(ws) => ws.next().await,
        None => pending().await,
    }
}

async fn wait_deadline(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => sleep_until(at.into()).await,
        None => pending().await,
    }
}

/// Runs the machine until it stops for good (a fatal close) or `control` says stop.
pub async fn run(mut core: DriverCore, mut control: mpsc::UnboundedReceiver<Control>) -> Summary {
    let mut connecting: Option<Connecting> = None;
    let mut socket: Option<Ws> = None;
    let mut closing: Vec<JoinHandle<()>> = Vec::new();
    let mut control_open = true;
    let mut actions = core.take_actions();
    loop {
        // Carry out what the machine decided. A failed send is a lost connection, whose
        // report may decide more.
        let mut queue = std::collections::VecDeque::from(std::mem::take(&mut actions));
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Connect(url) => {
                    socket = None;
                    connecting = Some(Box::pin(connect(url)));
                }
                Action::Send(text) => {
                    let Some(ws) = socket.as_mut() else { continue };
                    let error = match timeout(SEND_TIMEOUT, ws.send(WsMessage::text(text))).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "send timed out".to_string(),
                    };
                    socket = None;
                    queue.extend(core.failed("send failed", &error));
                }
                Action::Close(code, reason) => {
                    connecting = None;
                    if let Some(mut ws) = socket.take() {
                        // Send the close frame in the background and drop the socket; the
                        // machine is done with it (a zombie would never answer).
                        closing.push(tokio::spawn(async move {
                            let frame = WsCloseFrame {
                                code: WsCloseCode::from(code),
                                reason: reason.into(),
                            };
                            let _ = timeout(CLOSE_GRACE, ws.close(Some(frame))).await;
                        }));
                    }
                }
            }
        }
        if core.is_finished() {
            break;
        }
        let deadline = core.deadline();
        actions = tokio::select! {
            result = wait_connect(&mut connecting) => {
                connecting = None;
                match result {
                    Ok(ws) => {
                        socket = Some(ws);
                        core.connected()
                    }
                    Err(e) => core.failed("connection failed", &e),
                }
            }
            message = wait_message(&mut socket) => match message {
                Some(Ok(WsMessage::Text(text))) => core.message(Message::Text(text.as_str())),
                Some(Ok(WsMessage::Binary(bytes))) => core.message(Message::Binary(&bytes)),
                Some(Ok(WsMessage::Close(frame))) => {
                    socket = None;
                    let (code, reason) = match &frame {
                        Some(f) => (u16::from(f.code), f.reason.as_str()),
                        // A close frame without a status: 1005, "no status received".
                        None => (1005, ""),
                    };
                    core.closed(Some(CloseFrame { code, reason }))
                }
                // Pings are answered by tungstenite; pongs and raw frames mean nothing here.
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => {
                    socket = None;
                    core.failed("connection error", &e)
                }
                None => {
                    socket = None;
                    core.closed(None)
                }
            },
            () = wait_deadline(deadline) => core.timeout(),
            control = control.recv(), if control_open => match control {
                Some(Control::Command(line)) => core.command(&line),
                Some(Control::Stop) => core.shutdown(),
                None => {
                    control_open = false;
                    Vec::new()
                }
            },
        };
    }
    for task in closing {
        let _ = task.await;
    }
    core.finish()
}

/// The whole tokio driver program for `settings`: a current-thread runtime, commands from
/// stdin, Ctrl-C for a graceful shutdown. `name` prefixes error lines. Exit code: 0 after a
/// shutdown, 1 after a fatal stop, 2 for bad settings.
pub fn main_with(settings: Settings, name: &str) -> std::process::ExitCode {
    use std::process::ExitCode;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let core = match DriverCore::new(settings.core_options(), crate::common::stdout_sink()) {
            Ok(core) => core,
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::from(2);
            }
        };
        let (control, commands) = mpsc::unbounded_channel();
        let stdin = control.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if stdin.send(Control::Command(line)).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = control.send(Control::Stop);
            }
        });
        match run(core, commands).await.fatal {
            Some(reason) => {
                eprintln!("{name}: stopped: {reason}");
                ExitCode::FAILURE
            }
            None => ExitCode::SUCCESS,
        }
    });
    // stdin's reader blocks a thread until the next line: don't wait for it.
    runtime.shutdown_background();
    code
}
