use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use pledgeflow::{app, bench, clock::SystemClock, config::Config, store, workflow};

/// pledgeflow: commitment-based licence approval (告知承诺制) as persistent state machines.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Optional TOML configuration file; PLEDGEFLOW_* environment variables override it.
    #[arg(long, global = true, env = "PLEDGEFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: migrate, check and deploy definitions, serve HTTP.
    Serve {
        /// Seed demo cases into an empty database, and offer the console's demo sign-in.
        #[arg(long)]
        demo: bool,
        /// Where to listen, overriding PLEDGEFLOW_LISTEN: HOST:PORT, or a port alone (on 127.0.0.1).
        #[arg(long, value_parser = listen_arg)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Load the demo organisation, catalogue, applicants and cases into an empty database.
    Demo,
    /// Mint a bearer token signed with this installation's key (local use and tests). A staff
    /// token is checked against the staff registry on every request: its claims must be the
    /// registry's.
    Token {
        /// The login subject: a staff member's registry id, or the applicant's login.
        #[arg(long, default_value = "local-user")]
        subject: String,
        /// Repeat for several roles. Each needs its scope: window, approver and department_head
        /// --department; division_admin and inspector --department and --division; supervisor and
        /// regional_admin --region; applicant --uscc.
        #[arg(long = "role", required = true, value_parser = TOKEN_ROLES)]
        roles: Vec<String>,
        /// The name shown for the caller.
        #[arg(long)]
        name: Option<String>,
        /// The region (e.g. 310101) of a supervisor or regional admin.
        #[arg(long)]
        region: Option<String>,
        /// The department code (e.g. 310101-SCJG).
        #[arg(long)]
        department: Option<String>,
        /// The division code (e.g. 310101-SCJG-SP).
        #[arg(long)]
        division: Option<String>,
        /// The applicant's unified social credit code.
        #[arg(long)]
        uscc: Option<String>,
        /// Lifetime in hours (at most PLEDGEFLOW_JWT_MAX_LIFETIME_HOURS).
        #[arg(long, default_value_t = 8)]
        hours: i64,
    },
    /// Register (or replace) a staff member in the staff registry, which every staff token is
    /// checked against: the bootstrap of a fresh installation's first regional admin.
    Staff {
        /// The login subject the member's tokens carry.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Repeat for several roles: window, approver, division_admin, inspector, supervisor, regional_admin.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        region: String,
        /// The region's name, to create the region when it is not on file yet.
        #[arg(long)]
        region_name: Option<String>,
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        division: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Check every workflow definition and calendar in DIR (default: the configured folder).
    CheckWorkflows { dir: Option<PathBuf> },
    /// Back up a running installation into a new folder: on SQLite the database as one
    /// consistent file, taken while the server writes; with it the signing and audit keys and
    /// the audit checkpoints (on PostgreSQL the keys alone: the database by pg_dump).
    Backup {
        /// The folder to create.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup to where this configuration keeps the database and keys (a fresh
    /// place: nothing is overwritten).
    Restore {
        /// The backup folder.
        #[arg(long)]
        from: PathBuf,
    },
    /// The working-day calendar: import the State Council's notice for a year.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Write the GraphQL schema (SDL) to a file.
    ExportSchema {
        #[arg(long, default_value = "graphql/schema.graphql")]
        out: PathBuf,
    },
    /// Audit trail commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Measure transitions per second beside plain single-row commits.
    Bench {
        #[command(flatten)]
        guard: BenchGuard,
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        #[arg(long, default_value_t = 3000)]
        plain_commits: usize,
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        clients: Vec<usize>,
    },
    /// Time each statistics figure over N cases (fills the database given; use a fresh one).
    BenchStats {
        #[command(flatten)]
        guard: BenchGuard,
        #[arg(long, default_value_t = 1_000_000)]
        cases: usize,
    },
    /// Measure timer sweeps: empty at 0 and N pending timers, and firing M due among them.
    BenchTimers {
        #[command(flatten)]
        guard: BenchGuard,
        #[arg(long, default_value_t = 1_000_000)]
        pending: usize,
        #[arg(long, default_value_t = 100_000)]
        due: usize,
        /// The due timers' event: `remind` (an internal transition and two notices) or `expire`
        /// (a revocation: the state left, credit, statistics, three notices).
        #[arg(long, default_value = "remind", value_parser = ["remind", "expire"])]
        event: String,
        /// Batches fired at once (PostgreSQL; SQLite fires one at a time). Each holds a
        /// connection of the pool, so no more than it has.
        #[arg(long, default_value_t = pledgeflow::store::timers::Shape::default().tasks as u64, value_parser = clap::value_parser!(u64).range(1..=64))]
        tasks: u64,
        /// Most timers fired in one transaction.
        #[arg(long, default_value_t = pledgeflow::store::timers::Shape::default().batch, value_parser = clap::value_parser!(u64).range(1..=1024))]
        batch: u64,
    },
    /// Search and the enterprise file over the bench's cases: p50/p95/p99 through the GraphQL
    /// schema beside the statements it ran, run on their own (BENCHMARKS.md, issue #19).
    BenchSearch {
        #[command(flatten)]
        guard: BenchGuard,
        #[arg(long, default_value_t = 1_000_000)]
        cases: usize,
        #[arg(long, default_value_t = 300)]
        runs: usize,
    },
    /// The real server under load: N background cases, intake-to-licence flows over HTTP at each
    /// number of clients, inbox and case-detail latency at a fixed rate, peak memory.
    BenchLoad {
        #[command(flatten)]
        guard: BenchGuard,
        #[arg(long, default_value_t = 1_000_000)]
        cases: usize,
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 2000)]
        flows: usize,
        #[arg(long, default_value_t = 50)]
        rate: u32,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Clients running flows all through the latency phase: the reads measured under write load.
        #[arg(long, default_value_t = 0)]
        write_clients: usize,
    },
}

/// The roles a token may carry (`system` is the server's own and is never minted).
const TOKEN_ROLES: [&str; 8] = ["window", "approver", "department_head", "division_admin", "inspector", "supervisor", "regional_admin", "applicant"];

fn listen_arg(text: &str) -> Result<std::net::SocketAddr, String> {
    pledgeflow::config::parse_listen(text).map_err(str::to_string)
}

/// Benchmarks fill the database they are given: they refuse one that holds anything but their
/// own fixtures.
#[derive(clap::Args)]
struct BenchGuard {
    /// Run even on a database that holds data no bench seeded (never a production one).
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Import a calendar file (one `[years.YYYY]` table per year, as in
    /// workflows/calendars/cn-official.toml) into the database: every running server puts it in
    /// force at its next sweep and recounts the provisional deadlines over it, without a restart.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every instance's chain with the audit keys, check cases, credit records and
    /// applicants against what events and seals recorded, and report any break.
    Verify {
        /// A checkpoint file (`audit checkpoint`, or the server's): also report instances
        /// deleted, histories truncated and events rewritten since its checkpoints.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Append a sealed checkpoint of every instance's chain head now (the server writes one on
    /// PLEDGEFLOW_AUDIT_CHECKPOINT_SCHEDULE).
    Checkpoint {
        /// The file to append to (default: PLEDGEFLOW_AUDIT_CHECKPOINT_FILE).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Every instance's head, not only those changed since the file's last checkpoint.
        #[arg(long)]
        full: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Everything this process creates — the database, key files, mail and webhook files — is
    // readable by its own user alone (0600 files, 0700 folders).
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    // `--help` lists every setting's environment variable with its default.
    let matches = Cli::command().after_long_help(pledgeflow::config::settings_help()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Kept to the end of main: dropping it sends the spans still batched.
    let _traces = pledgeflow::traces::init(config.log_format);
    match run(cli.command, config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { demo, listen } => {
            let mut config = config;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if demo {
                config.demo_login = true;
            }
            if demo && config.contacts.is_empty() {
                config.contacts = pledgeflow::demo::contacts();
            }
            pledgeflow::telemetry::install();
            let application = app::Application::build(&config).await?;
            if demo {
                let n = pledgeflow::demo::seed(application.engine()).await?;
                tracing::info!(instances = n, "demo data seeded");
            }
            tracing::info!(listen = %config.listen, database = %pledgeflow::config::redact(&config.database_url), "pledgeflow serving");
            application.run(app::shutdown_signal()).await?;
        }
        Command::Token { subject, roles, name, region, department, division, uscc, hours } => {
            // (Zero or fewer hours mints an expired token, which tests of expiry want.)
            if chrono::Duration::hours(hours) > config.jwt_max_lifetime {
                anyhow::bail!("--hours {hours}: at most {} (PLEDGEFLOW_JWT_MAX_LIFETIME_HOURS); a longer-lived token is refused", config.jwt_max_lifetime.num_hours());
            }
            let db = store::connect(&config.database_url, 1).await?;
            store::migrate(&db).await?;
            // Every staff request is checked against the registry: a registered subject's token
            // takes the registry's scope where the flags leave it out; one the registry does not
            // know is said to be refused, and refused outright when it lacks its scope.
            let (mut region, mut department, mut division) = (region, department, division);
            let staff_roles = roles.iter().any(|r| r != "applicant");
            match (staff_roles, pledgeflow::window::registry::staff(&db, &subject).await?) {
                (true, Some(member)) => {
                    region = region.or(Some(member.region));
                    department = department.or(member.department);
                    division = division.or(member.division);
                }
                (true, None) => {
                    for role in &roles {
                        let need: &[(&str, bool)] = match role.as_str() {
                            "window" | "approver" | "department_head" => &[("--department", department.is_some())],
                            "division_admin" | "inspector" => &[("--department", department.is_some()), ("--division", division.is_some())],
                            "supervisor" | "regional_admin" => &[("--region", region.is_some() || department.is_some())],
                            _ => &[],
                        };
                        let missing: Vec<&str> = need.iter().filter(|(_, given)| !given).map(|(flag, _)| *flag).collect();
                        anyhow::ensure!(
                            missing.is_empty(),
                            "--role {role} needs {} (or a --subject the staff registry knows): its token would see nothing",
                            missing.join(" and ")
                        );
                    }
                    eprintln!("warning: {subject:?} is not in the staff registry: every request with this token is refused STAFF_NOT_REGISTERED until `pledgeflow staff --id {subject} …` registers it");
                }
                (false, _) => anyhow::ensure!(uscc.is_some(), "--role applicant needs --uscc: its token would see nothing"),
            }
            let now = chrono::Utc::now();
            let keys = pledgeflow::auth::keys(&db, &config.tokens()).await?;
            let mut claims = pledgeflow::auth::Claims::new(&subject, roles, now, chrono::Duration::hours(hours));
            claims.name = name;
            claims.region = region;
            claims.department = department;
            claims.division = division;
            claims.uscc = uscc;
            let token = keys
                .mint(&claims)
                .ok_or_else(|| anyhow::anyhow!("tokens are issued by {} here; this installation cannot mint them", config.jwt_issuer.as_deref().unwrap_or("an outside issuer")))?;
            println!("{token}");
        }
        Command::Staff { id, name, roles, region, region_name, department, division, email } => {
            use pledgeflow::window::registry;
            for role in &roles {
                if !pledgeflow::workflow::vocabulary::ROLES.contains(&role.as_str()) || role == "system" || role == "applicant" {
                    anyhow::bail!("unknown staff role {role:?}");
                }
            }
            let db = store::connect(&config.database_url, 1).await?;
            store::migrate(&db).await?;
            if let Some(n) = &region_name {
                registry::put_region(&db, &region, n).await?;
            }
            if let Some(d) = &department {
                let found = registry::department(&db, d).await?.ok_or_else(|| anyhow::anyhow!("no department {d}"))?;
                anyhow::ensure!(found.region == region, "department {d} is of region {}, not {region}", found.region);
            }
            if let Some(v) = &division {
                let found = registry::division(&db, v).await?.ok_or_else(|| anyhow::anyhow!("no division {v}"))?;
                anyhow::ensure!(department.as_deref() == Some(found.department.as_str()), "division {v} is not of department {}", department.as_deref().unwrap_or("(none)"));
            }
            let record = registry::StaffRecord { id: id.clone(), name, region: region.clone(), department, division, roles, email, active: true };
            registry::put_staff_in(&db, &record, chrono::Utc::now())
                .await
                .map_err(|e| anyhow::anyhow!("{e} (is region {region} on file? give --region-name to create it)"))?;
            println!("staff member {id} registered in region {region}");
        }
        Command::Demo => {
            let engine = app::build_engine(&config, std::sync::Arc::new(pledgeflow::clock::SystemClock)).await?;
            let n = pledgeflow::demo::seed(&engine).await?;
            if n == 0 {
                println!("the database already holds instances: demo data not loaded");
            } else {
                println!("demo data loaded: {n} instances; try `pledgeflow token --role window --department 310101-SCJG`");
            }
        }
        Command::Migrate => {
            let db = store::connect(&config.database_url, 1).await?;
            store::migrate(&db).await?;
            println!("migrations applied to {}", pledgeflow::config::redact(&config.database_url));
        }
        Command::CheckWorkflows { dir } => {
            let source = dir.map_or_else(|| config.workflows(), pledgeflow::domain::shipped::Source::Folder);
            let templates = config.templates();
            return Ok(match workflow::load(&source) {
                Ok(loaded) => {
                    let template_problems = match pledgeflow::delivery::templates::Templates::load(&templates) {
                        Ok(t) => t.missing_for(&loaded.workflows),
                        Err(problems) => problems,
                    };
                    if !template_problems.is_empty() {
                        for p in &template_problems {
                            println!("{p}");
                        }
                        println!("{} template problem(s) found in {}", template_problems.len(), templates.describe());
                        return Ok(ExitCode::FAILURE);
                    }
                    let defs: Vec<String> = loaded.workflows.all().map(|d| format!("{} v{}", d.name, d.version)).collect();
                    let years: Vec<String> = loaded
                        .calendar
                        .years()
                        .map(|y| if loaded.calendar.is_provisional_year(y) { format!("{y} (provisional: statutory holidays only)") } else { y.to_string() })
                        .collect();
                    println!("ok: {} definition(s): {}; calendar years: {}", defs.len(), defs.join(", "), years.join(", "));
                    println!("definitions, policy and calendars from {}; message templates from {}", source.describe(), templates.describe());
                    println!("events people fire, and the act each is taken through:");
                    for line in loaded.workflows.policy().describe() {
                        println!("  {line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    println!("{} problem(s) found", problems.len());
                    ExitCode::FAILURE
                }
            });
        }
        Command::Backup { to } => {
            let taken = pledgeflow::backup::take(&config, &to).await?;
            match &taken.database {
                Some(db) => println!("database backed up to {}", db.display()),
                None => println!("the database is PostgreSQL: back it up with pg_dump or WAL archiving (docs/deploy.md); keys copied"),
            }
            for f in &taken.files {
                println!("  {}", f.display());
            }
        }
        Command::Restore { from } => {
            for f in pledgeflow::backup::restore(&config, &from)? {
                println!("restored {}", f.display());
            }
        }
        Command::Calendar { command: CalendarCommand::Import { file } } => {
            let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow::anyhow!("{}: no file name", file.display()))?.to_string();
            let db = store::connect(&config.database_url, 1).await?;
            store::migrate(&db).await?;
            // Checked as the servers will read it: with the shipped years and those imported before.
            let source = config.workflows();
            let shipped = source.sub("calendars").files("toml").map_err(|u| anyhow::anyhow!("{}: {}", u.place, u.reason))?;
            let calendar = pledgeflow::domain::calendar::SharedCalendar::new(shipped)?;
            let mut files: Vec<_> = store::calendar_files::imported(&db).await?.into_iter().filter(|f| !f.name.ends_with(&format!("/{name}"))).collect();
            files.push(pledgeflow::domain::shipped::File { name: file.display().to_string(), text: text.clone() });
            let next = calendar.with_imported(&files)?;
            store::calendar_files::put(&db, &name, &text, chrono::Utc::now()).await?;
            let years: Vec<String> = next.years().map(|y| if next.is_provisional_year(y) { format!("{y} (provisional)") } else { y.to_string() }).collect();
            println!("imported {name}: calendar years {}; running servers put it in force at their next sweep and recount provisional deadlines", years.join(", "));
        }
        Command::ExportSchema { out } => {
            std::fs::write(&out, pledgeflow::api::sdl())?;
            println!("wrote {}", out.display());
        }
        Command::Audit { command: AuditCommand::Verify { checkpoint } } => {
            // Never generates a key: a trail is verified with the key it was written with.
            let keys = pledgeflow::trail::keys(&config, false)?;
            let db = store::connect(&config.database_url, 2).await?;
            let mut report = store::verify::verify_all(&db, &keys).await?;
            if let Some(file) = &checkpoint {
                pledgeflow::trail::verify_checkpoints(&db, &keys, file, &mut report).await?;
            }
            for b in &report.breaks {
                println!("BREAK {b}");
            }
            let against = checkpoint.map(|_| format!(", {} checkpointed head(s) compared", report.checkpointed)).unwrap_or_default();
            println!("{} instance(s), {} event(s), {} row(s) checked{against}, {} break(s)", report.instances, report.events, report.rows, report.breaks.len());
            if !report.breaks.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Audit { command: AuditCommand::Checkpoint { file, full } } => {
            let keys = pledgeflow::trail::keys(&config, false)?;
            let db = store::connect(&config.database_url, 2).await?;
            store::migrate(&db).await?;
            let path = file.unwrap_or_else(|| pledgeflow::trail::checkpoint_path(&config));
            let c = pledgeflow::trail::write_checkpoint(&db, &keys, &path, chrono::Utc::now(), full).await?;
            println!("checkpoint of {} instance(s) ({} head(s)) appended to {}", c.instances, c.heads.len(), path.display());
        }
        Command::Bench { cases, plain_commits, clients, guard } => {
            let engine = app::build_engine(&config, Arc::new(SystemClock)).await?;
            bench::claim_database(&engine.db, guard.force).await?;
            bench::run(engine, bench::BenchOptions { cases, plain_commits, clients }).await?;
        }
        Command::BenchStats { cases, guard } => {
            let engine = app::build_engine(&config, Arc::new(SystemClock)).await?;
            bench::claim_database(&engine.db, guard.force).await?;
            bench::run_stats(engine, cases).await?;
        }
        Command::BenchTimers { pending, due, event, tasks, batch, guard } => {
            let engine = app::build_engine(&config, Arc::new(SystemClock)).await?;
            bench::claim_database(&engine.db, guard.force).await?;
            bench::run_timers(engine, pending, due, &event, pledgeflow::store::timers::Shape { tasks: tasks as usize, batch }).await?;
        }
        Command::BenchSearch { cases, runs, guard } => {
            let engine = app::build_engine(&config, Arc::new(SystemClock)).await?;
            bench::claim_database(&engine.db, guard.force).await?;
            pledgeflow::search_bench::run(engine, &config, pledgeflow::search_bench::SearchOptions { cases, runs }).await?;
        }
        Command::BenchLoad { cases, clients, flows, rate, seconds, write_clients, guard } => {
            let engine = app::build_engine(&config, Arc::new(SystemClock)).await?;
            bench::claim_database(&engine.db, guard.force).await?;
            pledgeflow::load_bench::run(engine, &config, pledgeflow::load_bench::LoadOptions { cases, clients, flows, rate, seconds, write_clients }).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
