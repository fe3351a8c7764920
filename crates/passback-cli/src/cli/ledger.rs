//! `passback ledger …`: the ledger itself (a team ledger's password).

use std::process::ExitCode;

use clap::Subcommand;
use passback::Result;
use passback::app::{self, Ledger};
use passback::secrets::Secrets;
use passback::store::ServerAddress;

use super::output::read_secret;

#[derive(Subcommand, Debug)]
pub enum LedgerCmd {
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
        LedgerCmd::Password(PasswordCmd::Set {
            address,
            password_env,
        }) => {
            let a = server(&address)?;
            let password = read_secret(password_env.as_deref(), "password")?;
            app::set_server_password(&Secrets::os().await, &a, &password).await?;
            println!("Stored the password of {} for {a} in the OS keyring.", a.user());
        }
        LedgerCmd::Password(PasswordCmd::Forget { address }) => {
            let a = server(&address)?;
            if app::forget_server_password(&Secrets::os().await, &a).await? {
                println!("Removed the stored password for {a}.");
            } else {
                println!("No password was stored for {a}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
