//! The order of a run and its exit code: refuse (2) unless opted in with credentials;
//! print the plan and cost; run the lifecycle in its own task; on its end, its failure,
//! a panic or Ctrl-C, tear down; list what is left. Exit 0 = every check passed and
//! nothing is left, 1 = a check or step failed (teardown clean), 3 = something is left.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;

use crate::lifecycle::{self, Journal};
use crate::plan::Plan;
use crate::scaffold::{caller_account, Clients, Stop};
use crate::settings::{self, Mode, Refusal, RunId, Settings, RUN_TAG};
use crate::teardown::teardown;

const REFUSED: u8 = 2;
const FAILED: u8 = 1;
const LEFT_OVER: u8 = 3;
/// Time to read the plan and the cost, and to cancel with Ctrl-C, before anything is created.
const GRACE: Duration = Duration::from_secs(10);
/// How long a stopped lifecycle may take to finish its current AWS call.
const WIND_DOWN: Duration = Duration::from_secs(60);

fn refuse(r: Refusal) -> ExitCode {
    eprintln!("live-test refused: {r}");
    eprintln!("live-test: nothing was created");
    ExitCode::from(REFUSED)
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Resolves credentials through the SDK's default chain (no AWS API call).
async fn resolve_credentials(sdk: &aws_config::SdkConfig) -> Result<(), String> {
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| "no credentials provider configured".to_owned())?;
    match tokio::time::timeout(Duration::from_secs(30), provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the credential chain did not answer within 30 s".to_owned()),
    }
}

pub async fn main(args: Vec<String>) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let mode = match settings::mode(&args, env) {
        Ok(m) => m,
        Err(r) => return refuse(r),
    };
    if mode == Mode::DryRun {
        return match Settings::from_lookup(env, None, mode, RunId::generate()) {
            Ok(s) => {
                print!("{}", Plan::new(&s));
                println!("\nDry run: nothing was created and AWS was not called.");
                ExitCode::SUCCESS
            }
            Err(r) => refuse(r),
        };
    }

    let sdk = ami_core::aws::AwsCloud::sdk_from_env().await;
    if let Err(r) = settings::require_credentials(resolve_credentials(&sdk).await) {
        return refuse(r);
    }
    let region = sdk.region().map(|r| r.to_string());
    let s = match Settings::from_lookup(env, region, mode, RunId::generate()) {
        Ok(s) => s,
        Err(r) => return refuse(r),
    };
    let clients = Clients::new(&sdk, &s);
    let account = match caller_account(&clients).await {
        Ok(a) => a,
        Err(e) => return refuse(Refusal::NoCredentials(format!("{e:#}"))),
    };
    if s.share_account.as_ref().map(|a| a.as_str()) == Some(account.as_str()) {
        return refuse(Refusal::BadSetting {
            variable: "LIVE_SHARE_ACCOUNT",
            value: account,
            problem: "is the account the test runs in".to_owned(),
            fix: "a second account (sharing with yourself proves nothing), or unset",
        });
    }
    print!("{}", Plan::new(&s));
    println!(
        "\nAccount {account}. Starting in {} s: Ctrl-C now cancels with nothing created.",
        GRACE.as_secs()
    );
    tokio::select! {
        _ = tokio::time::sleep(GRACE) => {}
        _ = tokio::signal::ctrl_c() => {
            println!("live-test: cancelled; nothing was created");
            return ExitCode::from(FAILED);
        }
    }

    let local = tokio::task::LocalSet::new();
    local
        .run_until(run_and_tear_down(sdk, s, clients, &local))
        .await
}

async fn run_and_tear_down(
    sdk: aws_config::SdkConfig,
    s: Settings,
    clients: Clients,
    local: &tokio::task::LocalSet,
) -> ExitCode {
    let journal = Arc::new(Journal::default());
    let stop = Stop::default();
    let outcome = {
        let (sdk, s, clients, journal, stop) = (
            sdk.clone(),
            s.clone(),
            clients.clone(),
            journal.clone(),
            stop.clone(),
        );
        // A local task: a panic in it ends the task, not the process, and teardown runs.
        local.spawn_local(async move { lifecycle::run(&sdk, &s, &clients, &journal, &stop).await })
    };
    tokio::pin!(outcome);
    let result = tokio::select! {
        r = &mut outcome => r,
        _ = tokio::signal::ctrl_c() => {
            println!("\nlive-test: Ctrl-C — stopping the lifecycle, then tearing down");
            stop.request();
            match tokio::time::timeout(WIND_DOWN, &mut outcome).await {
                Ok(r) => r,
                Err(_) => {
                    outcome.abort();
                    Ok(Err(anyhow::anyhow!("stopped by Ctrl-C")))
                }
            }
        }
    };
    let lifecycle_error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(join) => Some(format!("the lifecycle panicked or was aborted: {join}")),
    };
    if let Some(e) = &lifecycle_error {
        println!("\nlive-test: the lifecycle stopped: {e}");
    }

    println!("\n== teardown (run {})", s.run);
    let left = tokio::select! {
        r = teardown(&clients, &s, &journal) => r,
        _ = tokio::signal::ctrl_c() => {
            println!("\nlive-test: teardown interrupted. Find what is left with the tag {RUN_TAG}={} (EC2 in {} and {}, the KMS key in {})", s.run, s.home, s.replica, s.replica);
            return ExitCode::from(LEFT_OVER);
        }
    };

    let checks = journal.checks();
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    println!(
        "\n== result: {} checks, {} failed",
        checks.len(),
        failed.len()
    );
    for c in &failed {
        println!("  FAILED {} — {}", c.name, c.detail);
    }
    println!("\nLeft tagged {RUN_TAG}={} (must be nothing):", s.run);
    match left {
        Ok(left) if left.is_empty() => println!("  nothing"),
        Ok(left) => {
            for l in &left {
                println!("  {l}");
            }
            return ExitCode::from(LEFT_OVER);
        }
        Err(e) => {
            println!("  could not list: {e:#}");
            return ExitCode::from(LEFT_OVER);
        }
    }
    if lifecycle_error.is_some() || !failed.is_empty() || checks.is_empty() {
        ExitCode::from(FAILED)
    } else {
        println!("\nlive-test: OK");
        ExitCode::SUCCESS
    }
}
