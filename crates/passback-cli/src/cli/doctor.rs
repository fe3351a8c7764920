//! `passback doctor`: the ledger, its schema and the OS keyring.

use std::path::Path;
use std::process::ExitCode;

use passback::Result;

use super::open;
use super::output::{JsonFlag, print_json};

pub async fn run(db: Option<&Path>, f: JsonFlag) -> Result<ExitCode> {
    let pb = open(db).await?;
    let d = pb.doctor().await?;
    if f.json {
        print_json(&d)?;
    } else {
        println!("Passback {}", d.passback_version);
        println!("Ledger:   {}", d.db_path);
        println!(
            "Schema:   version {} (this build knows {})",
            d.schema_version, d.schema_latest
        );
        println!("Engine:   {}", d.engine_version);
        println!("Keyring:  {}", if d.keyring_ok { "ok" } else { "NOT AVAILABLE" });
        println!("          {}", d.keyring_detail);
    }
    Ok(super::code(d.healthy()))
}
