//! `berth image ...`: the image store, used directly (no daemon): pull, load, ls, inspect, rm,
//! gc, and `rootfs` create/rm/ls for container root filesystems.

use super::{CliError, Ctx};
use clap::{Args, Subcommand, ValueEnum};
use images::{
    Credentials, Progress, PullOptions, RootfsPolicy, Store, StoreOptions, UnpackOptions,
};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The `berth image` subcommands.
#[derive(Subcommand)]
pub enum ImageCmd {
    /// Pull an image from a registry into the store.
    Pull(PullArgs),
    /// Load images from an OCI layout directory, an oci-archive tar or a `docker save` tar.
    Load(LoadArgs),
    /// List the images in the store.
    #[command(alias = "list")]
    Ls(OutputArgs),
    /// Show an image's record and config as JSON.
    Inspect {
        /// Name, id or id prefix.
        image: String,
    },
    /// Remove images (refused while a rootfs uses one); `gc` frees their layers.
    Rm {
        /// Names, ids or id prefixes.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove unnamed images, unreferenced layers and blobs, and interrupted work.
    Gc,
    /// Container root filesystems made from stored images.
    #[command(subcommand)]
    Rootfs(RootfsCmd),
}

/// `berth image rootfs ...`.
#[derive(Subcommand)]
pub enum RootfsCmd {
    /// Create a rootfs KEY from IMAGE and print its path.
    Create {
        /// Name, id or id prefix.
        image: String,
        /// The container key ([A-Za-z0-9_.-]).
        key: String,
        /// overlay (falls back to copy when overlayfs is missing: auto), or copy.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
    },
    /// Unmount and remove rootfs KEYs.
    Rm {
        /// Keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// List rootfs.
    Ls(OutputArgs),
}

/// How a rootfs is built.
#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Overlay, else copy.
    Auto,
    /// Overlay only.
    Overlay,
    /// Copy only.
    Copy,
}

/// Output format flag.
#[derive(Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A human table.
    Table,
    /// Stable JSON.
    Json,
}

/// Limits shared by pull and load.
#[derive(Args)]
pub struct LimitArgs {
    /// Refuse a layer whose uncompressed content exceeds this many bytes.
    #[arg(long, default_value_t = UnpackOptions::default().max_layer_bytes)]
    max_layer_bytes: u64,
}

/// `berth image pull`.
#[derive(Args)]
pub struct PullArgs {
    /// `name[:tag][@digest]`.
    reference: String,
    /// Docker-style config.json with an `auths` map (default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json when present).
    #[arg(long)]
    auth_file: Option<PathBuf>,
    /// A secret file `{"username": "...", "password": "..."}` (a task's repositoryCredentials).
    #[arg(long, conflicts_with = "auth_file")]
    secret_file: Option<PathBuf>,
    /// `USER:PASSWORD` (prefer --secret-file: arguments are visible to other users).
    #[arg(long, conflicts_with_all = ["auth_file", "secret_file"])]
    creds: Option<String>,
    /// Allow plain HTTP to this registry (loopback registries are always allowed).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Layers downloaded at once.
    #[arg(long, default_value_t = 3)]
    max_concurrent_downloads: usize,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// `berth image load`.
#[derive(Args)]
pub struct LoadArgs {
    /// OCI layout directory, oci-archive tar or docker-save tar.
    path: PathBuf,
    /// Name for the image (replaces the source's name; the source must hold one image).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    limits: LimitArgs,
}

fn open(ctx: &Ctx, limits: Option<&LimitArgs>) -> Result<Store, CliError> {
    let mut opts = StoreOptions::default();
    if let Some(l) = limits {
        opts.unpack.max_layer_bytes = l.max_layer_bytes;
    }
    Ok(Store::open_with(&ctx.root, opts)?)
}

/// Run one `berth image` subcommand.
pub fn run(cmd: ImageCmd, ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        ImageCmd::Pull(a) => pull(a, ctx),
        ImageCmd::Load(a) => {
            let store = open(ctx, Some(&a.limits))?;
            let report = store.load(&a.path, a.name.as_deref())?;
            for i in &report.images {
                println!("Loaded {} {}", i.id, i.names.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCmd::Ls(o) => ls(&open(ctx, None)?, o.output),
        ImageCmd::Inspect { image } => {
            let store = open(ctx, None)?;
            let rec = store.resolve(&image)?;
            let config = store.image_config(&rec)?;
            let out = serde_json::json!({"image": rec, "config": config});
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        ImageCmd::Rm { images } => {
            let store = open(ctx, None)?;
            for i in images {
                match store.remove(&i)? {
                    images::RemoveOutcome::Untagged(n) => println!("Untagged {n}"),
                    images::RemoveOutcome::Removed(id) => println!("Removed {id}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ImageCmd::Gc => {
            let r = open(ctx, None)?.gc()?;
            println!(
                "Removed {} images, {} layers, {} blobs, {} temp entries",
                r.images, r.layers, r.blobs, r.temps
            );
            Ok(ExitCode::SUCCESS)
        }
        ImageCmd::Rootfs(c) => rootfs(c, ctx),
    }
}

fn ls(store: &Store, output: Output) -> Result<ExitCode, CliError> {
    let list = store.list()?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<60} {:<12} {:>10} CREATED", "NAME", "ID", "SIZE");
    for i in &list {
        let size = format!("{:.1}MB", i.size_bytes as f64 / 1e6);
        let created = i.created.clone().unwrap_or_default();
        if i.names.is_empty() {
            println!(
                "{:<60} {:<12} {:>10} {created}",
                "<none>",
                i.id.short(),
                size
            );
        }
        for n in &i.names {
            println!("{n:<60} {:<12} {:>10} {created}", i.id.short(), size);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rootfs(cmd: RootfsCmd, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let store = open(ctx, None)?;
    match cmd {
        RootfsCmd::Create { image, key, mode } => {
            let policy = match mode {
                Mode::Auto => RootfsPolicy::Auto,
                Mode::Overlay => RootfsPolicy::Overlay,
                Mode::Copy => RootfsPolicy::Copy,
            };
            let r = store.create_rootfs_with(&image, &key, policy)?;
            println!("{}", r.path.display());
        }
        RootfsCmd::Rm { keys } => {
            for k in keys {
                store.remove_rootfs(&k)?;
            }
        }
        RootfsCmd::Ls(o) => {
            let list = store.list_rootfs()?;
            if o.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<40} {:<12} MODE", "KEY", "IMAGE");
                for r in list {
                    println!("{:<40} {:<12} {:?}", r.key, r.image.short(), r.mode);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn credentials(a: &PullArgs, registry: &str) -> Result<Credentials, CliError> {
    if let Some(c) = &a.creds {
        let (u, p) = c.split_once(':').ok_or("--creds wants USER:PASSWORD")?;
        return Ok(Credentials::Basic {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    if let Some(f) = &a.secret_file {
        return Ok(Credentials::from_secret_file(f)?);
    }
    let file = a
        .auth_file
        .clone()
        .or_else(images::pull::default_docker_config);
    match file {
        Some(f) => Ok(Credentials::from_docker_config(&f, registry)?),
        None => Ok(Credentials::Anonymous),
    }
}

fn pull(a: PullArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let store = open(ctx, Some(&a.limits))?;
    let reference = images::Reference::parse(&a.reference)?;
    let mut opts = PullOptions {
        credentials: credentials(&a, &reference.registry)?,
        insecure_registries: a.insecure_registries.clone(),
        max_concurrent_downloads: a.max_concurrent_downloads.max(1),
        ..PullOptions::default()
    };
    let bars = (!a.quiet && std::io::stderr().is_terminal()).then(progress::Bars::new);
    if let Some(b) = &bars {
        let b = b.clone();
        opts.progress = Some(Arc::new(move |p: Progress| b.event(p)));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(store.pull(&a.reference, &opts))?;
    if let Some(b) = &bars {
        b.finish();
    }
    println!(
        "Pulled {} {} ({} layers fetched, {} already present)",
        report.image.id, reference, report.layers_fetched, report.layers_present
    );
    Ok(ExitCode::SUCCESS)
}

mod progress {
    //! indicatif bars on stderr, one per layer.
    use images::Progress;
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Clone)]
    pub(super) struct Bars {
        multi: MultiProgress,
        bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    }

    impl Bars {
        pub(super) fn new() -> Self {
            Self {
                multi: MultiProgress::new(),
                bars: Arc::default(),
            }
        }

        fn bar(&self, digest: &str, total: u64) -> ProgressBar {
            let Ok(mut bars) = self.bars.lock() else {
                return ProgressBar::hidden();
            };
            bars.entry(digest.to_string())
                .or_insert_with(|| {
                    let b = self.multi.add(ProgressBar::new(total));
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}",
                    ) {
                        b.set_style(style.progress_chars("=> "));
                    }
                    b.set_prefix(digest.chars().skip(7).take(12).collect::<String>());
                    b
                })
                .clone()
        }

        pub(super) fn event(&self, p: Progress) {
            match p {
                Progress::LayerPresent { digest, size } => self
                    .bar(&digest.to_string(), size)
                    .finish_with_message("already present"),
                Progress::LayerBytes {
                    digest,
                    bytes,
                    size,
                } => self.bar(&digest.to_string(), size).set_position(bytes),
                Progress::LayerDone { digest, size } => self
                    .bar(&digest.to_string(), size)
                    .finish_with_message("done"),
            }
        }

        pub(super) fn finish(&self) {
            let _ = self.multi.clear();
        }
    }
}
