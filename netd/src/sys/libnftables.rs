//! libnftables in-process: the same parser and transaction as the `nft` binary, without a
//! fork and exec per change (which is most of an attach's cost). Loaded with `dlopen`, so
//! netd still runs (through the `nft` binary) on a host without `libnftables.so.1`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type CtxBuffer = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// One libnftables context (`struct nft_ctx`), used from one thread at a time.
pub struct Libnftables {
    ctx: *mut c_void,
    free: CtxFree,
    run: RunCmd,
    error: GetBuffer,
}

// SAFETY: the context is owned exclusively by this value (never shared or cloned) and
// libnftables keeps no thread-local state, so moving it to another thread is sound; `&mut
// self` on `apply` keeps calls from overlapping.
unsafe impl Send for Libnftables {}

/// Look up `name` in `lib` as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the function pointer type of the C symbol `name`.
unsafe fn symbol<T: Copy>(lib: *mut c_void, name: &CStr) -> Option<T> {
    // SAFETY: `lib` is a live handle from dlopen and `name` is NUL-terminated.
    let ptr = unsafe { libc::dlsym(lib, name.as_ptr()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `T` is the symbol's function pointer type, which has
    // the size of a data pointer on Linux.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&ptr) })
}

impl Libnftables {
    /// Load `libnftables.so.1` and make a context with buffered output and errors; `None`
    /// when the library or one of its symbols is missing.
    pub fn open() -> Option<Self> {
        // SAFETY: dlopen with a constant NUL-terminated name; the handle is never closed,
        // so function pointers taken from it stay valid for the process's life.
        let lib = unsafe {
            libc::dlopen(
                c"libnftables.so.1".as_ptr(),
                libc::RTLD_NOW | libc::RTLD_LOCAL,
            )
        };
        if lib.is_null() {
            return None;
        }
        // SAFETY: each type matches the prototype in <nftables/libnftables.h>.
        let (new, free, out, err, error, run) = unsafe {
            (
                symbol::<CtxNew>(lib, c"nft_ctx_new")?,
                symbol::<CtxFree>(lib, c"nft_ctx_free")?,
                symbol::<CtxBuffer>(lib, c"nft_ctx_buffer_output")?,
                symbol::<CtxBuffer>(lib, c"nft_ctx_buffer_error")?,
                symbol::<GetBuffer>(lib, c"nft_ctx_get_error_buffer")?,
                symbol::<RunCmd>(lib, c"nft_run_cmd_from_buffer")?,
            )
        };
        // SAFETY: NFT_CTX_DEFAULT (0) is a valid flag set; a null result is checked.
        let ctx = unsafe { new(0) };
        if ctx.is_null() {
            return None;
        }
        // SAFETY: `ctx` is the live context just made. Buffering keeps nft's messages out
        // of our stdout/stderr and lets `apply` return them.
        unsafe {
            out(ctx);
            err(ctx);
        }
        Some(Self {
            ctx,
            free,
            run,
            error,
        })
    }

    /// Run `script` as one transaction; nft's error text on failure.
    pub fn apply(&mut self, script: &str) -> Result<(), String> {
        let text = CString::new(script).map_err(|_| "script contains a NUL byte".to_owned())?;
        // SAFETY: `ctx` is live and used by one caller at a time (`&mut self`); `text` is
        // NUL-terminated and outlives the call.
        let rc = unsafe { (self.run)(self.ctx, text.as_ptr()) };
        // SAFETY: `ctx` is live; the returned buffer is owned by the context and valid until
        // the next call on it, and it is copied before that.
        let message = unsafe {
            let p = (self.error)(self.ctx);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        if rc == 0 {
            Ok(())
        } else {
            let first: Vec<&str> = message.lines().take(3).collect();
            Err(first.join(" | "))
        }
    }
}

impl Drop for Libnftables {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from nft_ctx_new and is freed exactly once, here.
        unsafe { (self.free)(self.ctx) }
    }
}
