//! The command line: `rookery [serve]`, `rookery user …`, `rookery create-invite …`, `rookery invite …`,
//! `rookery check`.
//!
//! Every subcommand reads the same configuration as the server, so it finds the same data directory and domain;
//! the user commands work on the database directly, whether the server runs or not.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rookery_config::{Config, Loaded};
use rookery_modules::invites::{self, InviteError};
use rookery_sasl::Credentials;
use rookery_store::{Circle, MIN_PASSWORD_CHARS, Role, Store, StoreError};

/// Rookery: a self-hosted XMPP server for families and small groups, configured like Snikket.
#[derive(Parser, Debug)]
#[command(name = "rookery", version)]
pub struct Cli {
    /// A snikket.conf-style file of SNIKKET_* variables; the environment wins over it.
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Create an invite link (Snikket's `create-invite`): to a new account, or with --reset to a new password.
    CreateInvite(CreateInviteArgs),
    /// List or revoke invites.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Manage circles: groups of people who all have each other as contacts.
    #[command(subcommand)]
    Circle(CircleCommand),
    /// Check the configuration and the certificate, and say what the server would do.
    Check,
}

#[derive(clap::Args, Debug)]
pub struct CreateInviteArgs {
    /// The new account is an administrator (the same as putting `--role admin` first).
    #[arg(long, conflicts_with = "reset")]
    pub admin: bool,
    /// A role for the new account: admin, normal or limited (or Prosody's names); repeatable, the first counts.
    #[arg(long = "role", value_name = "ROLE", conflicts_with = "reset")]
    pub roles: Vec<String>,
    /// A circle (its id, such as `default`) the new account joins; repeatable.
    #[arg(long = "group", value_name = "CIRCLE", conflicts_with = "reset")]
    pub groups: Vec<String>,
    /// How long the link works: a number and a unit, such as 30m, 12h, 2d, 1w or 1y (default 1w; 1d with
    /// --reset).
    #[arg(long, value_name = "DURATION")]
    pub expires_after: Option<String>,
    /// A link for this existing account (`user` or `user@DOMAIN`) to set a new password.
    #[arg(long, value_name = "USER")]
    pub reset: Option<String>,
    /// Also draw the link as a QR code.
    #[arg(long)]
    pub qr: bool,
}

#[derive(Subcommand, Debug)]
pub enum InviteCommand {
    /// List the invites that can still be used.
    List,
    /// Delete an invite, so its link stops working.
    Revoke { token: String },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// The username (the part before @).
        name: String,
        /// The password; read from the terminal (or one line of standard input) when not given.
        #[arg(long)]
        password: Option<String>,
        /// admin, normal or limited.
        #[arg(long, default_value = "normal")]
        role: String,
    },
    /// List the accounts.
    List,
    /// Delete an account.
    Delete { name: String },
    /// Set a new password.
    Passwd {
        name: String,
        /// The new password; read from the terminal (or one line of standard input) when not given.
        #[arg(long)]
        password: Option<String>,
    },
    /// Change an account's role (admin, normal or limited).
    Role { name: String, role: String },
    /// Enable a disabled account, cancelling its deletion if its owner asked for one (Snikket's "Restore account").
    Enable { name: String },
    /// List the clients that logged in to an account with SASL2 (id, software, device, dates, FAST token).
    Clients { name: String },
    /// Revoke a client: its FAST token is deleted and it must log in with the password again (a session it has
    /// open on a running server stays until it reconnects).
    RevokeClient { name: String, id: String },
}

/// Circle commands. Ids are base64url and may start with `-`: they are taken as values, not options. They write
/// the database only: a running server syncs the members' contact lists at each
/// member's next login.
#[derive(Subcommand, Debug)]
pub enum CircleCommand {
    /// List the circles: id, name and member count.
    List,
    /// Create a circle and print its id.
    Create {
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Rename a circle.
    Rename {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Delete a circle (its members keep the contacts they have).
    Delete {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Add an account to a circle.
    Add {
        #[arg(allow_hyphen_values = true)]
        id: String,
        user: String,
    },
    /// Remove an account from a circle (it keeps the contacts it has).
    Remove {
        #[arg(allow_hyphen_values = true)]
        id: String,
        user: String,
    },
}

/// Loads the configuration, printing every error at once.
pub fn load_config(cli: &Cli) -> Result<Config, ExitCode> {
    match Config::load(std::env::vars(), cli.env_file.as_deref()) {
        Ok(Loaded { config, warnings }) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            Ok(config)
        }
        Err(errors) => {
            eprintln!("The configuration has errors:\n{errors}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs a `user` subcommand.
pub async fn run_user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = user_command(config, &store, command).await;
    store.close().await;
    result
}

/// Runs a `circle` subcommand.
pub async fn run_circle(config: &Config, command: CircleCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = circle_command(config, &store, command).await;
    store.close().await;
    result
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open_sqlite(&config.database_path())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.database_path().display()
            )
        })
}

/// Longest circle name, in bytes: the roster's limit on a group name, since members see it as one.
const MAX_CIRCLE_NAME_BYTES: usize = rookery_modules::roster::MAX_NAME_BYTES;

async fn circle_command(
    config: &Config,
    store: &Store,
    command: CircleCommand,
) -> anyhow::Result<()> {
    let circles = store.circles();
    let domain = &config.domain;
    match command {
        CircleCommand::List => {
            for circle in circles.list().await? {
                let members = circles.members(&circle.id).await?.len();
                println!("{}\t{}\t{members}", circle.id, circle.name);
            }
        }
        CircleCommand::Create { name } => {
            let name = circle_name(&name)?;
            let circle = circles.create(&Circle::new_id(), &name).await?;
            println!("{}", circle.id);
        }
        CircleCommand::Rename { id, name } => {
            let name = circle_name(&name)?;
            let circle = existing_circle(store, &id).await?;
            circles.rename(&circle.id, &name).await?;
            println!("Renamed {} to {name}", circle.id);
        }
        CircleCommand::Delete { id } => {
            let circle = existing_circle(store, &id).await?;
            circles.delete(&circle.id).await?;
            println!("Deleted {} ({})", circle.id, circle.name);
        }
        CircleCommand::Add { id, user } => {
            let circle = existing_circle(store, &id).await?;
            let user = existing_account(store, &user, domain).await?;
            if circles.add_member(&circle.id, &user).await? {
                println!(
                    "Added {user}@{domain} to {}; contacts are synced at the next login",
                    circle.name
                );
            } else {
                println!("{user}@{domain} is already in {}", circle.name);
            }
        }
        CircleCommand::Remove { id, user } => {
            let circle = existing_circle(store, &id).await?;
            let user = existing_account(store, &user, domain).await?;
            if !circles.remove_member(&circle.id, &user).await? {
                bail!("{user}@{domain} is not in {}", circle.name);
            }
            println!("Removed {user}@{domain} from {}", circle.name);
        }
    }
    Ok(())
}

/// An existing circle, or an error naming the id.
async fn existing_circle(store: &Store, id: &str) -> anyhow::Result<Circle> {
    match store.circles().get(id).await? {
        Some(circle) => Ok(circle),
        None => bail!("there is no circle {id:?} (`rookery circle list` shows them)"),
    }
}

/// A circle name as given, trimmed, or why it cannot be one.
fn circle_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() {
        bail!("a circle needs a name");
    }
    if name.len() > MAX_CIRCLE_NAME_BYTES {
        bail!("a circle name has at most {MAX_CIRCLE_NAME_BYTES} bytes");
    }
    Ok(name.to_owned())
}

/// The username of an existing account, or an error naming the account.
async fn existing_account(store: &Store, name: &str, domain: &str) -> anyhow::Result<String> {
    let name = username(name, domain)?;
    if !store.accounts().exists(&name).await? {
        bail!("there is no account {name}@{domain}");
    }
    Ok(name)
}

/// Runs `create-invite`.
pub async fn run_create_invite(config: &Config, args: CreateInviteArgs) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = create_invite(config, &store, args).await;
    store.close().await;
    result
}

/// Runs an `invite` subcommand.
pub async fn run_invite(config: &Config, command: InviteCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = invite_command(config, &store, command).await;
    store.close().await;
    result
}

/// What invites made here record as their source.
const CLI_SOURCE: &str = "cli";

async fn create_invite(
    config: &Config,
    store: &Store,
    args: CreateInviteArgs,
) -> anyhow::Result<()> {
    let ttl = args
        .expires_after
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    let (invite, reset_of) = if let Some(user) = args.reset {
        let name = username(&user, &config.domain)?;
        let invite = invites::create_reset_invite(store, &name, ttl, Some(CLI_SOURCE.to_owned()))
            .await
            .map_err(|err| match err {
                InviteError::NoSuchAccount(_) => {
                    anyhow::anyhow!("there is no account {name}@{}", config.domain)
                }
                other => other.into(),
            })?;
        (invite, Some(name))
    } else {
        let mut roles = Vec::new();
        if args.admin {
            roles.push(Role::Admin);
        }
        for role in &args.roles {
            roles.push(role.parse::<Role>().map_err(|_| {
                anyhow::anyhow!("unknown role {role:?}: use admin, normal or limited")
            })?);
        }
        let options = invites::AccountInvite {
            roles,
            circles: args.groups,
            ttl,
            source: Some(CLI_SOURCE.to_owned()),
            ..invites::AccountInvite::default()
        };
        let invite = invites::create_account_invite(store, options)
            .await
            .map_err(|err| match err {
                InviteError::NoSuchCircle(id) => anyhow::anyhow!(
                    "there is no circle {id:?}: see `rookery circle list` (the default circle is created when the server first starts)"
                ),
                other => other.into(),
            })?;
        (invite, None)
    };
    // Every invite made here has a landing page: only contact-only invites lack one.
    let link = invites::landing_url(config, &invite)
        .unwrap_or_else(|| invites::invite_uri(&config.domain, &invite));
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(out, "Your invite link: {link}")?;
    writeln!(out)?;
    if let Some(name) = reset_of {
        // Snikket prints only this summary instead of the link; here it comes after it.
        writeln!(
            out,
            "It lets {name}@{} set a new password until {}.",
            config.domain,
            invites::expiry_stamp(&invite)
        )?;
    }
    if args.qr {
        writeln!(out, "QR code for scanning:")?;
        writeln!(out, "{}", qr_code(&link, out.is_terminal())?)?;
    }
    Ok(())
}

/// `text` as a QR code of half-block characters (two modules per character, so it stays square). On a terminal
/// the code is drawn black on white whatever the terminal's colours, since scanners want dark modules on a light
/// background; elsewhere (a file, a pipe) it is plain text.
pub fn qr_code(text: &str, terminal: bool) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).context("cannot draw the QR code")?;
    let drawn = code.render::<Dense1x2>().quiet_zone(true).build();
    if !terminal {
        return Ok(drawn);
    }
    Ok(drawn
        .lines()
        .map(|line| format!("\x1b[30;107m{line}\x1b[0m"))
        .collect::<Vec<_>>()
        .join("\n"))
}

async fn invite_command(
    config: &Config,
    store: &Store,
    command: InviteCommand,
) -> anyhow::Result<()> {
    match command {
        InviteCommand::List => {
            let valid = store
                .invites()
                .list_valid(rookery_modules::support::unix_now())
                .await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "token\tkind\texpires\troles\tcircles\taccount")?;
            for invite in valid {
                let kind = if invite.reusable {
                    format!("{} (reusable)", invite.kind.as_str())
                } else {
                    invite.kind.as_str().to_owned()
                };
                let roles: Vec<&str> = invite.roles.iter().map(|r| r.snikket_name()).collect();
                let account = invite
                    .username
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |u| format!("{u}@{}", config.domain));
                writeln!(
                    out,
                    "{}\t{kind}\t{}\t{}\t{}\t{account}",
                    invite.token,
                    invites::expiry_stamp(&invite),
                    dash_if_empty(&roles.join(",")),
                    dash_if_empty(&invite.circles.join(",")),
                )?;
            }
        }
        InviteCommand::Revoke { token } => {
            if !store.invites().revoke(&token).await? {
                bail!("there is no invite {token:?}");
            }
            println!("Revoked the invite {token}");
        }
    }
    Ok(())
}

fn dash_if_empty(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// A lifetime in seconds from Prosody's duration syntax (`util.human.io.parse_duration`): a number, optional
/// spaces and a unit, read by its first letters, so `2d`, `2 days`, `1w`, `1 week`, `3 months`. Units: seconds,
/// minutes (`min`; Rookery also reads `m` as minutes, where Prosody refuses it), hours, days, weeks, months (`mon`,
/// 31 days) and years (365.2425 days). Unlike Prosody, the whole text must be a duration (`x1d` is refused), and a
/// number without a unit is refused as Prosody does.
pub fn parse_duration(text: &str) -> anyhow::Result<i64> {
    let usage = || {
        anyhow::anyhow!(
            "cannot read the duration {text:?}: use a number and a unit, such as 30m, 12h, 2d, 1w or 1y"
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = lower.split_at(digits);
    let number: i64 = number.parse().map_err(|_| usage())?;
    let seconds_per_unit: i64 = match unit.trim_start() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "ho" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "mon" | "month" | "months" => 31 * 86_400,
        "y" | "year" | "years" => 31_556_952,
        _ => return Err(usage()),
    };
    let seconds = number
        .checked_mul(seconds_per_unit)
        .filter(|s| (1..=invites::MAX_TTL_SECS).contains(s))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the duration {text:?} is out of range: an invite lasts more than 0 seconds and at most ten years"
            )
        })?;
    Ok(seconds)
}

async fn user_command(config: &Config, store: &Store, command: UserCommand) -> anyhow::Result<()> {
    let accounts = store.accounts();
    match command {
        UserCommand::Add {
            name,
            password,
            role,
        } => {
            let name = username(&name, &config.domain)?;
            let role: Role = role.parse().map_err(|_| {
                anyhow::anyhow!("unknown role {role:?}: use admin, normal or limited")
            })?;
            let password = password_from(password)?;
            let credentials =
                Credentials::from_password(&password).context("cannot use that password")?;
            match accounts.create(&name, &credentials, role).await {
                Ok(()) => println!("Created {name}@{} ({})", config.domain, role_name(role)),
                Err(StoreError::AlreadyExists) => bail!("{name}@{} already exists", config.domain),
                Err(err) => return Err(err.into()),
            }
        }
        UserCommand::List => {
            for account in accounts.list().await? {
                let disabled = if account.disabled { " (disabled)" } else { "" };
                println!(
                    "{}@{}\t{}{disabled}",
                    account.username,
                    config.domain,
                    role_name(account.role)
                );
            }
        }
        UserCommand::Delete { name } => {
            let name = username(&name, &config.domain)?;
            if !accounts.delete(&name).await.map_err(only_admin)? {
                bail!("there is no account {name}@{}", config.domain);
            }
            println!("Deleted {name}@{}", config.domain);
        }
        UserCommand::Passwd { name, password } => {
            let name = username(&name, &config.domain)?;
            if accounts.get(&name).await?.is_none() {
                bail!("there is no account {name}@{}", config.domain);
            }
            let password = password_from(password)?;
            let credentials =
                Credentials::from_password(&password).context("cannot use that password")?;
            accounts.set_credentials(&name, &credentials).await?;
            println!("Changed the password of {name}@{}", config.domain);
        }
        UserCommand::Role { name, role } => {
            let name = username(&name, &config.domain)?;
            let role: Role = role.parse().map_err(|_| {
                anyhow::anyhow!("unknown role {role:?}: use admin, normal or limited")
            })?;
            if !accounts.set_role(&name, role).await.map_err(only_admin)? {
                bail!("there is no account {name}@{}", config.domain);
            }
            println!("{name}@{} is now {}", config.domain, role_name(role));
        }
        UserCommand::Clients { name } => {
            let name = existing_account(store, &name, &config.domain).await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            for client in store.clients().list(&name, now).await? {
                println!(
                    "{}\t{}",
                    client.client_id,
                    rookery_modules::client_management::describe(&client)
                );
            }
        }
        UserCommand::RevokeClient { name, id } => {
            let name = existing_account(store, &name, &config.domain).await?;
            if !store.clients().revoke(&name, &id).await? {
                bail!("{name}@{} has no client {id:?}", config.domain);
            }
            println!("Revoked client {id} of {name}@{}", config.domain);
        }
        UserCommand::Enable { name } => {
            let name = username(&name, &config.domain)?;
            let deletions = store.account_deletions();
            let pending = deletions.get(&name).await?;
            if !deletions.restore(&name).await? {
                bail!("there is no account {name}@{}", config.domain);
            }
            match pending {
                Some(_) => println!(
                    "Enabled {name}@{} and cancelled its deletion",
                    config.domain
                ),
                None => println!("Enabled {name}@{}", config.domain),
            }
        }
    }
    Ok(())
}

/// The store's refusal to remove the only administrator, said for the command line (other errors unchanged).
fn only_admin(err: StoreError) -> anyhow::Error {
    match err {
        StoreError::OnlyAdmin => anyhow::anyhow!("{err} (with `rookery user role OTHER admin`)"),
        err => err.into(),
    }
}

/// Snikket's names for the roles.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Normal => "normal",
        Role::Limited => "limited",
    }
}

/// A username as the server compares it (nodeprep, as Prosody), or an error saying why it cannot be one.
/// `alice@DOMAIN` is accepted for `alice`.
fn username(name: &str, domain: &str) -> anyhow::Result<String> {
    let name = name.strip_suffix(&format!("@{domain}")).unwrap_or(name);
    match jid::NodePart::new(name) {
        Ok(node) if !node.as_str().is_empty() => Ok(node.as_str().to_owned()),
        _ => bail!("{name:?} cannot be a username"),
    }
}

/// The password given, or one read from the terminal (asked twice) or from standard input.
fn password_from(given: Option<String>) -> anyhow::Result<String> {
    let password = match given {
        Some(p) => {
            eprintln!(
                "note: a password given with --password can be seen by other users of this machine and is kept in shell history; leave it out to be asked for it"
            );
            p
        }
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password: ")?;
            let second = rpassword::prompt_password("Again: ")?;
            if first != second {
                bail!("the passwords do not match");
            }
            first
        }
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("a password needs at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(password)
}

/// `rookery check`: the configuration, the data directory, the database and the certificate.
pub async fn run_check(config: &Config) -> anyhow::Result<bool> {
    let mut ok = true;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Configuration: valid")?;
    writeln!(
        out,
        "  domain:          {} ({})",
        config.domain, config.domain_ascii
    )?;
    writeln!(out, "  data directory:  {}", config.data_dir.display())?;
    let ports = [
        ("client (STARTTLS)", config.c2s_port),
        ("client (direct TLS)", config.c2s_direct_tls_port),
    ];
    for (name, port) in ports {
        if port == 0 {
            writeln!(out, "  {name}: off")?;
        } else {
            writeln!(out, "  {name}: port {port}")?;
        }
    }
    let db = config.database_path();
    if db.exists() {
        match Store::open_sqlite(&db).await {
            Ok(store) => {
                let count = store.accounts().count().await?;
                writeln!(out, "Database: {} ({count} accounts)", db.display())?;
                store.close().await;
            }
            Err(err) => {
                ok = false;
                writeln!(out, "Database: {} cannot be opened: {err}", db.display())?;
            }
        }
    } else {
        writeln!(
            out,
            "Database: {} (not created yet; the server creates it)",
            db.display()
        )?;
    }
    let cert_dir = config.cert_dir();
    if cert_dir.join("fullchain.pem").exists() {
        rookery_tls::install_crypto_provider();
        match rookery_tls::CertStore::open(
            &cert_dir,
            &config.data_dir,
            &crate::certificate_names(config),
        ) {
            Ok(certs) => {
                let status = certs.status();
                writeln!(out, "Certificate: {:?}", status.source)?;
                writeln!(out, "  names:     {}", status.names.join(", "))?;
                writeln!(out, "  valid to:  {}", humantime_utc(status.not_after))?;
                if !status.missing_names.is_empty() {
                    writeln!(
                        out,
                        "  WARNING: does not cover {}",
                        status.missing_names.join(", ")
                    )?;
                }
                if status.not_after < std::time::SystemTime::now() {
                    ok = false;
                    writeln!(out, "  ERROR: the certificate has expired")?;
                }
            }
            Err(err) => {
                ok = false;
                writeln!(
                    out,
                    "Certificate: {} cannot be used: {err}",
                    cert_dir.display()
                )?;
            }
        }
    } else {
        writeln!(
            out,
            "Certificate: none in {} — the server will use a self-signed certificate, which the apps will not trust",
            cert_dir.display()
        )?;
    }
    Ok(ok)
}

/// A UTC date for humans, without pulling in a date library.
fn humantime_utc(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    /// A circle id may start with `-` (base64url): it is an id, not an option.
    #[test]
    fn circle_ids_may_start_with_a_dash() {
        let cli =
            Cli::try_parse_from(["rookery", "circle", "add", "-x_1AbCdEfGh", "alice"]).unwrap();
        match cli.command {
            Some(Command::Circle(CircleCommand::Add { id, user })) => {
                assert_eq!((id.as_str(), user.as_str()), ("-x_1AbCdEfGh", "alice"));
            }
            other => panic!("{other:?}"),
        }
        for sub in ["delete", "rename"] {
            let mut args = vec!["rookery", "circle", sub, "-abc"];
            if sub == "rename" {
                args.push("New name");
            }
            assert!(Cli::try_parse_from(args).is_ok(), "{sub}");
        }
    }

    #[test]
    fn durations_follow_prosody() {
        let ok = [
            ("30m", 1_800),
            ("30 min", 1_800),
            ("1h", 3_600),
            ("2d", 172_800),
            ("2 days", 172_800),
            ("1w", 604_800),
            ("1 Week", 604_800),
            ("45s", 45),
            ("3mon", 3 * 31 * 86_400),
            ("1y", 31_556_952),
        ];
        for (text, seconds) in ok {
            assert_eq!(parse_duration(text).unwrap(), seconds, "{text}");
        }
        for bad in [
            "", "1", "d", "1x", "x1d", "1.5d", "-1d", "0d", "11y", "1d2h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn usernames_are_nodeprepped() {
        assert_eq!(username("Alice", "example.com").unwrap(), "alice");
        assert_eq!(
            username("alice@example.com", "example.com").unwrap(),
            "alice"
        );
        assert!(username("a@b", "example.com").is_err());
        assert!(username("", "example.com").is_err());
    }
}
