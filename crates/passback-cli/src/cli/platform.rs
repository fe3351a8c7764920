//! `passback platform add-lti11 | add-ltiaas | list | remove`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use passback::Result;
use passback::model::{NewLti11Platform, NewLtiaasPlatform};

use super::open;
use super::output::{JsonFlag, platform_summary, print_json, print_table, read_secret};

#[derive(Debug, Subcommand)]
pub enum PlatformCmd {
    /// Add an LTI 1.1 platform; the consumer secret is read from stdin or --secret-env.
    #[command(name = "add-lti11")]
    AddLti11 {
        /// A short name you will use in other commands.
        #[arg(long)]
        name: String,
        /// The OAuth consumer key the LMS issued.
        #[arg(long)]
        consumer_key: String,
        /// A host Passback may send outcomes to (repeatable), e.g. canvas.example.edu.
        #[arg(long = "allow-host", value_name = "HOST", required = true)]
        allow_hosts: Vec<String>,
        /// Allow plain http:// to non-loopback hosts (loopback is always allowed).
        #[arg(long)]
        allow_http: bool,
        /// Read the secret from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Add an LTIAAS platform; the API key is read from stdin or --secret-env.
    #[command(name = "add-ltiaas")]
    AddLtiaas {
        #[arg(long)]
        name: String,
        /// e.g. https://your.ltiaas.com
        #[arg(long)]
        base_url: String,
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List platforms (never shows secrets).
    List(JsonFlag),
    /// The platform's secret in this computer's keyring.
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Remove a platform, its ledger data and its keyring entries.
    Remove {
        name: String,
        /// Confirm removing a platform that still has grades.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Store the platform's consumer secret or API key again (read from stdin or
    /// --secret-env), for the hosts the platform lists now: for a new keyring, a
    /// shared ledger, or an entry stored before secrets were bound to their hosts.
    Set {
        name: String,
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
    },
}

pub async fn run(db: Option<&Path>, cmd: PlatformCmd) -> Result<ExitCode> {
    match cmd {
        PlatformCmd::AddLti11 {
            name,
            consumer_key,
            allow_hosts,
            allow_http,
            secret_env,
            json,
        } => {
            let secret = read_secret(secret_env.as_deref(), "consumer secret")?;
            let pb = open(db).await?;
            let p = pb
                .add_lti11_platform(
                    NewLti11Platform {
                        name,
                        consumer_key,
                        allowed_hosts: allow_hosts,
                        allow_http,
                    },
                    &secret,
                )
                .await?;
            if json {
                print_json(&p)?;
            } else {
                println!(
                    "Added platform {}. The secret is in the OS keyring ({}).",
                    platform_summary(&p),
                    p.secret_ref
                );
            }
        }
        PlatformCmd::AddLtiaas {
            name,
            base_url,
            secret_env,
            json,
        } => {
            let secret = read_secret(secret_env.as_deref(), "LTIAAS API key")?;
            let pb = open(db).await?;
            let p = pb
                .add_ltiaas_platform(NewLtiaasPlatform { name, base_url }, &secret)
                .await?;
            if json {
                print_json(&p)?;
            } else {
                println!(
                    "Added platform {}. The API key is in the OS keyring ({}).",
                    platform_summary(&p),
                    p.secret_ref
                );
            }
        }
        PlatformCmd::List(f) => {
            let pb = open(db).await?;
            let ps = pb.list_platforms().await?;
            if f.json {
                print_json(&ps)?;
            } else if ps.is_empty() {
                println!(
                    "No platforms yet. Add one with `passback platform add-lti11 --name N --consumer-key K --allow-host H`."
                );
            } else {
                let rows = ps
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.kind.as_str().into(),
                            p.consumer_key
                                .clone()
                                .or_else(|| p.base_url.clone())
                                .unwrap_or_default(),
                            p.allowed_hosts.join(","),
                            if p.allow_http {
                                "yes".into()
                            } else {
                                "loopback only".into()
                            },
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &["NAME", "KIND", "KEY / BASE URL", "ALLOWED HOSTS", "PLAIN HTTP"],
                    &rows,
                );
            }
        }
        PlatformCmd::Secret(SecretCmd::Set { name, secret_env }) => {
            let secret = read_secret(secret_env.as_deref(), "secret")?;
            let pb = open(db).await?;
            let p = pb.set_platform_secret(&name, &secret).await?;
            println!(
                "Stored the secret of platform {} in the OS keyring, for {} only.",
                p.name,
                p.allowed_hosts.join(", ")
            );
        }
        PlatformCmd::Remove { name, yes } => {
            let pb = open(db).await?;
            let r = pb.remove_platform(&name, yes).await?;
            println!(
                "Removed platform {} ({} context(s), {} grade(s), {} keyring entr{}).",
                r.name,
                r.contexts,
                r.grades,
                r.keyring_entries,
                if r.keyring_entries == 1 { "y" } else { "ies" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
