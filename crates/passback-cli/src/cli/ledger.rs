//! `passback ledger …`: the ledger itself (a team ledger's password).

use std::process::ExitCode;

use clap::Subcommand;
use passback::Result;
use passback::app::{self, Ledger};
use passback::store::ServerAddress;

use super::output::read_secret;

#[derive(Subcommand, Debug)]
pub enum LedgerCmd {
    /// Copy a personal ledger (grades, history and attempts) into a team ledger:
    /// an empty one, or an earlier copy of the same ledger (then only what is
    /// missing is written). Says which secrets each person must store again.
    Copy {
        /// The ledger file to copy.
        #[arg(long, value_name = "PATH")]
        from: std::path::PathBuf,
        /// Where to: postgres://USER@HOST:PORT/DATABASE (or another ledger file).
        #[arg(long, value_name = "URL|PATH")]
        to: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A team ledger's password, kept in this person's OS keyring (never in the
    /// ledger, the address or the shell history). A job without a keyring uses the
    /// file PGPASSFILE names instead.
    #[command(subcommand)]
    Password(PasswordCmd),
}

#[derive(Subcommand, Debug)]
pub enum PasswordCmd {
    /// Store the password for ADDRESS (postgres://USER@HOST:PORT/DATABASE), read
    /// from stdin or --password-env.
    Set {
        address: String,
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Remove the stored password for ADDRESS.
    Forget { address: String },
}

fn server(address: &str) -> Result<ServerAddress> {
    match app::resolve_ledger(Some(std::path::Path::new(address)))? {
        Ledger::Server(a) => Ok(a),
        Ledger::File(p) => Err(passback::Error::invalid(format!(
            "{} is a ledger file, which has no password: give a postgres://USER@HOST:PORT/DATABASE address.",
            p.display()
        ))),
    }
}

pub async fn run(cmd: LedgerCmd) -> Result<ExitCode> {
    match cmd {
        LedgerCmd::Copy { from, to, json } => {
            let dest = app::resolve_ledger(Some(std::path::Path::new(&to)))?;
            let report = app::copy_ledger(&from, &dest, super::secrets().await?, |table, rows, written| {
                if !json {
                    eprintln!("  {table}: {rows} row(s), {written} written");
                }
            })
            .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| passback::Error::internal(e.to_string()))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let rows: u64 = report.tables.iter().map(|t| t.1).sum();
            let written: u64 = report.tables.iter().map(|t| t.2).sum();
            println!(
                "Copied {} into {dest}: {rows} row(s), {written} written now{}.",
                from.display(),
                if report.again {
                    " (it held this ledger already; only what was missing)"
                } else {
                    ""
                }
            );
            println!(
                "The ledger id {} is kept: the secrets in your own keyring work for the team ledger as they are.",
                report.ledger_id
            );
            if !report.platforms.is_empty() {
                println!("Everyone else stores each platform's secret in their own keyring:");
                for p in &report.platforms {
                    println!("  passback --db {dest} platform secret set {p}");
                }
            }
            if report.service_keys > 0 {
                println!(
                    "{} LTIAAS service key(s) are in your keyring only: others capture the ID tokens again \
                     (passback ltiaas idtoken).",
                    report.service_keys
                );
            }
        }
        LedgerCmd::Password(PasswordCmd::Set {
            address,
            password_env,
        }) => {
            let a = server(&address)?;
            let password = read_secret(password_env.as_deref(), "password")?;
            app::set_server_password(&super::secrets().await?, &a, &password).await?;
            println!("Stored the password of {} for {a} in the OS keyring.", a.user());
        }
        LedgerCmd::Password(PasswordCmd::Forget { address }) => {
            let a = server(&address)?;
            if app::forget_server_password(&super::secrets().await?, &a).await? {
                println!("Removed the stored password for {a}.");
            } else {
                println!("No password was stored for {a}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
