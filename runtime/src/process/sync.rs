//! The typed channel between the runtime and the container's init: one SOCK_SEQPACKET
//! socketpair, one JSON message per packet.

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};

/// Runtime → init.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ToInit {
    /// uid/gid maps written, init placed in its cgroup: go on.
    Proceed,
    /// prestart and createRuntime hooks have run.
    HooksDone,
}

/// Init → runtime.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FromInit {
    /// The mounts are in place: run prestart and createRuntime hooks now, then answer.
    RunHooks,
    /// Setup finished; init now blocks on the exec fifo.
    Ready,
    /// A setup step failed; the message names the step and the object.
    Failed { message: String },
}

/// One end of the channel.
pub struct Channel(OwnedFd);

/// A new pair: (runtime end, init end).
pub fn pair() -> nix::Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    /// Send one message.
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        send(self.0.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
            .map(|_| ())
            .map_err(|e| format!("send: {e}"))
    }

    /// Receive one message; `Ok(None)` when the other end closed without a word.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, String> {
        self.recv_with(MsgFlags::empty())
    }

    /// A message already waiting, if any; `Ok(None)` when none is (or the other end closed).
    pub fn try_recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, String> {
        self.recv_with(MsgFlags::MSG_DONTWAIT)
    }

    fn recv_with<T: for<'de> Deserialize<'de>>(
        &self,
        flags: MsgFlags,
    ) -> Result<Option<T>, String> {
        // Messages are small (an error line at most); a larger one fails to decode.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match recv(self.0.as_raw_fd(), &mut buf, flags) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return serde_json::from_slice(&buf[..n])
                        .map(Some)
                        .map_err(|e| format!("decode: {e}"))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                // Only with MSG_DONTWAIT: nothing is waiting.
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
    }
}
