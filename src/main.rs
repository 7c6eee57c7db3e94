//! The `mxdesk` command line: parse arguments, load the configuration, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// sysexits.h EX_USAGE: the configuration is wrong.
const EX_USAGE: u8 = 64;

/// mxdesk: a service desk that is its own mail server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SMTP server and the API.
    Serve {
        /// TOML configuration file; embedded defaults when absent.
        #[arg(long, env = "MXDESK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and exit.
    CheckConfig {
        #[arg(long, env = "MXDESK_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match mxdesk::config::Config::load(config.as_deref()) {
            Ok(_) => {
                println!("configuration OK");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("mxdesk: {error}");
                ExitCode::from(EX_USAGE)
            }
        },
        Command::Serve { config } => serve(config),
    }
}

fn serve(config_path: Option<PathBuf>) -> ExitCode {
    let config = match mxdesk::config::Config::load(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mxdesk: {error}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mxdesk: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match mxdesk::server::Server::bind(config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("mxdesk: {error}");
                return ExitCode::from(EX_USAGE);
            }
        };
        if let Some(token) = &server.new_admin_token {
            println!("admin token (shown once, also in <data_dir>/admin-token): {token}");
        }
        for address in server.smtp_addrs() {
            println!("smtp listening on {address}");
        }
        if let Some(address) = server.api_addr() {
            println!("api listening on http://{address}");
        }
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        server.run(shutdown).await;
        ExitCode::SUCCESS
    })
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn wait_for_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}
