//! Providers taken from the environment: the `from_env` tables of a config (or every key, for
//! a file without `[[providers]]` and for `lbgpt run` without a config file) become one
//! provider per key variable, found by [`lbgpt::env::EnvKeys`] in the process environment
//! and the `.env` files ([`Config::dotenv_files`]; `./.env` alone without a config file),
//! named by the variable, with the limits of the `[env.NAME]` tables.

use super::error::ConfigError;
use super::settings::{
    AzureCredential, BalanceSettings, Config, EnvGroup, EnvProvenance, ProviderApi,
    ProviderSettings, RetrySettings, SecretSource, TransportSettings,
    DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_WEIGHT,
};
use lbgpt::env::{EnvError, EnvKeys, EnvKind, EnvMember, AZURE_OPENAI_API_KEY, OPENAI_API_KEY};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

impl Config {
    /// The config `lbgpt run` uses: the file at `path`, or, when no `--config` was given
    /// (`explicitly_given` false) and `path` (the default `lbgpt.toml`) does not exist, every
    /// key of the environment with the default settings ([`Config::from_environment`]).
    ///
    /// Keys come from the process environment and `./.env` ([`EnvKeys::from_process_env`]).
    pub fn load_for_run(path: &Path, explicitly_given: bool) -> Result<Config, ConfigError> {
        if !explicitly_given && !path.exists() {
            let variables = EnvKeys::from_process_env().map_err(dotenv_error)?;
            return Config::from_environment(path, variables);
        }
        Config::load(path)
    }

    /// A config without a file: every key of `variables` (both kinds) becomes a provider, with
    /// the default retry, balance and concurrency settings and no cache. `missing_file` is
    /// named in the error when no key is set.
    pub fn from_environment(
        missing_file: &Path,
        variables: EnvKeys,
    ) -> Result<Config, ConfigError> {
        if variables.members().is_ok_and(|members| members.is_empty()) {
            return Err(ConfigError::without_file(format!(
                "no config file ({} does not exist) and no `{OPENAI_API_KEY}*` or \
                 `{AZURE_OPENAI_API_KEY}*` variable is set in the environment or ./.env: set \
                 one, or name a config file with --config",
                missing_file.display()
            )));
        }
        let config = Config {
            path: PathBuf::new(),
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            retry: RetrySettings::default(),
            balance: BalanceSettings::default(),
            providers: Vec::new(),
            cache: None,
            semantic_cache: None,
            env_groups: vec![EnvGroup::every_key()],
            env_keys: BTreeMap::new(),
            variables: None,
        };
        // Variables that do not fit together are named by `resolve_env`.
        config.resolve_env(variables)
    }

    /// Adds the providers of the `from_env` tables (or, for a file without `[[providers]]`,
    /// of every key) found in `variables`, in the place of their table, with the weight and
    /// limits of their `[env.NAME]` table (else of their `from_env` table), and keeps
    /// `variables` for reading keys later ([`Config::lookup`]).
    ///
    /// Fails, naming the variable and the table's line, when the variables are inconsistent
    /// ([`EnvError`]), a `from_env` pattern matches no variable, a key variable is also the key
    /// of a provider of the file or matched by two tables, an `[env.NAME]` table names no
    /// provider, or (without `[[providers]]`) no key is set at all.
    pub fn resolve_env(mut self, variables: EnvKeys) -> Result<Config, ConfigError> {
        let groups = std::mem::take(&mut self.env_groups);
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for provider in &self.providers {
            for var in key_variables(provider) {
                taken.insert(var, format!("provider \"{}\"", provider.name));
            }
        }
        let names: BTreeSet<String> = self.providers.iter().map(|p| p.name.clone()).collect();
        let mut inserts: Vec<(usize, Vec<ProviderSettings>)> = Vec::new();
        let mut used_limits = BTreeSet::new();
        for group in &groups {
            let found = match &group.pattern {
                Some(pattern) => variables.members_matching(pattern),
                None => variables.members(),
            };
            let members = found.map_err(|err| self.group_error(group, &err.to_string()))?;
            if members.is_empty() {
                let places = places(&variables);
                let message = match &group.pattern {
                    Some(pattern) => format!("no variable matching `{pattern}` is set in {places}"),
                    None => format!(
                        "no `{OPENAI_API_KEY}*` or `{AZURE_OPENAI_API_KEY}*` variable is set in \
                         {places}"
                    ),
                };
                return Err(self.group_error(group, &message));
            }
            let mut built = Vec::with_capacity(members.len());
            for member in members {
                let name = member.name().to_owned();
                let owner = match &group.pattern {
                    Some(pattern) => format!("`from_env = \"{pattern}\"`"),
                    None => "the environment".to_owned(),
                };
                if let Some(other) = taken.insert(name.clone(), owner) {
                    return Err(self.group_error(
                        group,
                        &format!(
                            "the key in `{name}` is already used by {other}; a key must be \
                             used once"
                        ),
                    ));
                }
                if names.contains(&name) {
                    return Err(self.group_error(
                        group,
                        &format!("provider name \"{name}\" is used twice; names must be unique"),
                    ));
                }
                if self.env_keys.contains_key(&name) {
                    used_limits.insert(name.clone());
                }
                built.push(self.member_settings(group, member));
            }
            inserts.push((group.position, built));
        }
        if let Some((name, limits)) = self
            .env_keys
            .iter()
            .find(|(name, _)| !used_limits.contains(*name))
        {
            return Err(limits.site.error(
                &self.path,
                format!(
                    "`[env.{name}]`: no provider takes its key from `{name}` (it is not set in \
                     {}, or no `from_env` pattern matches it)",
                    places(&variables)
                ),
            ));
        }
        for (position, members) in inserts.into_iter().rev() {
            let at = position.min(self.providers.len());
            self.providers.splice(at..at, members);
        }
        self.variables = Some(variables);
        Ok(self)
    }

    /// The value of variable `name`: from `env` (the process environment in the binary) when
    /// it is set there, else from the variables [`Config::resolve_env`] kept (the `.env`
    /// files).
    pub fn lookup(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        env(name).or_else(|| {
            self.variables
                .as_ref()
                .and_then(|variables| variables.get(name))
                .map(str::to_owned)
        })
    }

    /// An error about `group`: at its `from_env` line, or about the whole file (or about the
    /// environment, without a file).
    fn group_error(&self, group: &EnvGroup, message: &str) -> ConfigError {
        match &group.site {
            Some(site) => site.error(&self.path, format!("key `from_env`: {message}")),
            None if self.path.as_os_str().is_empty() => ConfigError::without_file(format!(
                "keys from the environment (no config file): {message}"
            )),
            None => ConfigError::whole_file(
                &self.path,
                format!("no `[[providers]]` table, so keys come from the environment: {message}"),
            ),
        }
    }

    /// The provider of `member`, a key of `group`.
    fn member_settings(&self, group: &EnvGroup, member: EnvMember) -> ProviderSettings {
        let name = member.name().to_owned();
        let limits = self.env_keys.get(&name);
        let site = limits
            .map(|limits| limits.site.clone())
            .or_else(|| group.site.clone())
            .unwrap_or_default();
        let key = SecretSource::Discovered { var: name.clone() };
        let api = match member.kind() {
            EnvKind::OpenAi => ProviderApi::OpenAi {
                base_url: member.url_or_default().to_owned(),
                organization: None,
                project: None,
                api_key: key,
            },
            EnvKind::Azure => ProviderApi::Azure {
                endpoint: member.url_or_default().to_owned(),
                api_version: member.api_version().map(|setting| setting.value.clone()),
                deployments: member.deployments(),
                auth: AzureCredential::ApiKey(key),
            },
        };
        let variable = |setting: Option<&lbgpt::env::EnvSetting>| {
            setting.map(|setting| setting.variable.clone())
        };
        ProviderSettings {
            transport: TransportSettings {
                proxy: member.proxy().map(|proxy| proxy.value.clone()),
                ..group.transport.clone()
            },
            api,
            weight: limits
                .and_then(|limits| limits.weight)
                .or(group.weight)
                .unwrap_or(DEFAULT_WEIGHT),
            rpm: limits.and_then(|limits| limits.rpm).or(group.rpm),
            tpm: limits.and_then(|limits| limits.tpm).or(group.tpm),
            site,
            from_env: Some(EnvProvenance {
                key_origin: member.key_origin().clone(),
                proxy_variable: variable(member.proxy()),
                url_variable: variable(member.url()),
                api_version_variable: variable(member.api_version()),
                deployments_variable: variable(member.deployments_setting()),
            }),
            name,
        }
    }
}

/// Where `variables` were looked for, for error messages: `the environment, proj/.env or
/// ./.env`.
fn places(variables: &EnvKeys) -> String {
    let mut places = vec!["the environment".to_owned()];
    places.extend(variables.dotenv_files().iter().map(|path| {
        if path.parent().is_some_and(|dir| dir.as_os_str().is_empty()) {
            format!("./{}", path.display())
        } else {
            path.display().to_string()
        }
    }));
    match places.split_last() {
        Some((last, first)) if !first.is_empty() => format!("{} or {last}", first.join(", ")),
        _ => places.join(""),
    }
}

/// The environment variables a provider of the file reads its credential from.
fn key_variables(provider: &ProviderSettings) -> Vec<String> {
    let source = match &provider.api {
        ProviderApi::OpenAi { api_key, .. } => api_key,
        ProviderApi::Azure {
            auth: AzureCredential::ApiKey(source) | AzureCredential::BearerToken(source),
            ..
        } => source,
    };
    match source {
        SecretSource::Env { var, .. } | SecretSource::Discovered { var } => vec![var.clone()],
        SecretSource::Inline(_) => Vec::new(),
    }
}

/// A `.env` file that cannot be read or parsed.
pub(super) fn dotenv_error(err: EnvError) -> ConfigError {
    ConfigError::without_file(format!("cannot use the keys of the environment: {err}"))
}
