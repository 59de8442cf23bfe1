use super::*;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

fn load(source: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(Path::new("lbgpt.toml"), source)
}

fn error(source: &str) -> ConfigError {
    match load(source) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err,
    }
}

const FULL: &str = r#"
max_concurrent_requests = 12

[retry]
max_attempts = 4
initial_backoff_ms = 100
max_backoff_ms = 2000
max_retry_after_ms = 5000
deadline_ms = 60000

[[providers]]
kind = "openai"
name = "openai-main"
base_url = "http://127.0.0.1:8080/v1"
api_key_env = "MY_OPENAI_KEY"
organization = "org-1"
project = "proj-1"
proxy = "http://127.0.0.1:3128"
connect_timeout_ms = 1000
request_timeout_ms = 30000
headers = { "x-team" = "research" }

[[providers]]
kind = "azure"
name = "azure-eu"
endpoint = "https://x.openai.azure.com"
api_key = "inline-azure-key"
api_version = "2024-10-21"
deployments = { "gpt-4o" = "gpt4o-prod" }
"#;

#[test]
fn full_example_loads_with_every_key() {
    let config = load(FULL).expect("valid config");
    assert_eq!(config.max_concurrent_requests, 12);
    assert_eq!(config.retry.max_attempts, 4);
    assert_eq!(config.retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(config.retry.max_backoff, Duration::from_millis(2000));
    assert_eq!(config.retry.max_retry_after, Duration::from_millis(5000));
    assert_eq!(config.retry.deadline, Some(Duration::from_secs(60)));
    assert_eq!(config.providers.len(), 2);

    let openai = &config.providers[0];
    assert_eq!(openai.name, "openai-main");
    assert_eq!(openai.kind(), ProviderKind::Openai);
    assert_eq!(
        openai.transport.proxy.as_deref(),
        Some("http://127.0.0.1:3128")
    );
    assert_eq!(
        openai.transport.connect_timeout,
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        openai.transport.request_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        openai.transport.headers.get("x-team").map(String::as_str),
        Some("research")
    );
    match &openai.api {
        ProviderApi::OpenAi {
            base_url,
            organization,
            project,
            api_key,
        } => {
            assert_eq!(base_url, "http://127.0.0.1:8080/v1");
            assert_eq!(organization.as_deref(), Some("org-1"));
            assert_eq!(project.as_deref(), Some("proj-1"));
            let env = |name: &str| (name == "MY_OPENAI_KEY").then(|| "sk-from-env".to_owned());
            let key = api_key
                .resolve(&config.path, &openai.name, &env)
                .expect("env var is set");
            assert_eq!(key.expose_secret(), "sk-from-env");
        }
        other => panic!("expected openai, got {other:?}"),
    }

    let azure = &config.providers[1];
    assert_eq!(azure.name, "azure-eu");
    match &azure.api {
        ProviderApi::Azure {
            endpoint,
            api_version,
            deployments,
            auth: AzureCredential::ApiKey(key),
        } => {
            assert_eq!(endpoint, "https://x.openai.azure.com");
            assert_eq!(api_version.as_deref(), Some("2024-10-21"));
            assert_eq!(
                deployments.get("gpt-4o").map(String::as_str),
                Some("gpt4o-prod")
            );
            let key = key
                .resolve(&config.path, &azure.name, &|_| None)
                .expect("inline key");
            assert_eq!(key.expose_secret(), "inline-azure-key");
        }
        other => panic!("expected azure with api key, got {other:?}"),
    }
}

#[test]
fn inline_keys_never_show_in_debug() {
    let config = load(FULL).expect("valid config");
    let debug = format!("{config:?}");
    assert!(!debug.contains("inline-azure-key"), "{debug}");
    assert!(debug.contains("[REDACTED]"));
}

#[test]
fn defaults_fill_in_the_minimal_file() {
    let config = load("[[providers]]\nkind = \"openai\"\n").expect("valid");
    assert_eq!(config.max_concurrent_requests, 5);
    assert_eq!(config.retry, RetrySettings::default());
    assert_eq!(config.retry.max_attempts, 10);
    assert_eq!(config.providers[0].name, "openai-1");
    match &config.providers[0].api {
        ProviderApi::OpenAi {
            base_url, api_key, ..
        } => {
            assert_eq!(base_url, "https://api.openai.com/v1");
            let env = HashMap::from([("OPENAI_API_KEY", "sk-default")]);
            let lookup = |name: &str| env.get(name).map(|v| (*v).to_owned());
            let key = api_key
                .resolve(&config.path, "openai-1", &lookup)
                .expect("default variable");
            assert_eq!(key.expose_secret(), "sk-default");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn default_names_count_per_kind() {
    let config = load(
        "[[providers]]\nkind = \"openai\"\n[[providers]]\nkind = \"openai\"\n\
         [[providers]]\nkind = \"azure\"\nendpoint = \"https://a\"\ndeployments = { m = \"d\" }\n",
    )
    .expect("valid");
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["openai-1", "openai-2", "azure-1"]);
}

#[test]
fn unknown_top_level_key_names_key_and_line() {
    let err = error("max_concurrent_requests = 2\nmax_concurent = 3\n");
    assert_eq!(err.line(), Some(2), "{err}");
    let text = err.to_string();
    assert!(text.contains("lbgpt.toml"), "{text}");
    assert!(text.contains("line 2"), "{text}");
    assert!(text.contains("max_concurent"), "{text}");
}

#[test]
fn unknown_key_in_a_provider_names_key_and_line() {
    let err = error("[[providers]]\nkind = \"openai\"\napi_kee_env = \"X\"\n");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.message.contains("api_kee_env"), "{err}");
}

#[test]
fn unknown_key_in_retry_names_key_and_line() {
    let err = error("[retry]\nmax_attempts = 3\nbackoff = 1\n[[providers]]\nkind = \"openai\"\n");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.message.contains("backoff"), "{err}");
}

#[test]
fn syntax_error_has_a_line() {
    let err = error("[[providers]]\nkind = \"openai\nname = \"x\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
}

#[test]
fn unknown_kind_is_named() {
    let err = error("[[providers]]\nkind = \"anthropic\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
    assert!(err.message.contains("anthropic"), "{err}");
    assert!(
        err.message.contains("openai") && err.message.contains("azure"),
        "{err}"
    );
}

#[test]
fn missing_kind_is_named() {
    let err = error("[[providers]]\nname = \"x\"\n");
    assert!(err.message.contains("kind"), "{err}");
}

#[test]
fn azure_keys_on_openai_provider_are_errors_naming_the_key() {
    let err =
        error("[[providers]]\nkind = \"openai\"\nname = \"o\"\ndeployments = { a = \"b\" }\n");
    assert_eq!(err.line(), Some(4), "{err}");
    assert!(err.message.contains("`deployments`"), "{err}");
    assert!(err.message.contains("azure"), "{err}");

    let err = error("[[providers]]\nkind = \"openai\"\nendpoint = \"https://x\"\n");
    assert!(err.message.contains("`endpoint`"), "{err}");
}

#[test]
fn openai_keys_on_azure_provider_are_errors_naming_the_key() {
    let err = error(
        "[[providers]]\nkind = \"azure\"\nendpoint = \"https://x\"\ndeployments = { a = \"b\" }\n\
         base_url = \"https://y\"\n",
    );
    assert_eq!(err.line(), Some(5), "{err}");
    assert!(err.message.contains("`base_url`"), "{err}");
}

#[test]
fn azure_requires_endpoint_and_deployments() {
    let err = error("[[providers]]\nkind = \"azure\"\ndeployments = { a = \"b\" }\n");
    assert!(err.message.contains("`endpoint`"), "{err}");
    assert!(err.line().is_some());
    let err = error("[[providers]]\nkind = \"azure\"\nendpoint = \"https://x\"\n");
    assert!(err.message.contains("`deployments`"), "{err}");
    let err =
        error("[[providers]]\nkind = \"azure\"\nendpoint = \"https://x\"\ndeployments = {}\n");
    assert_eq!(err.line(), Some(4));
}

#[test]
fn azure_bearer_token_env() {
    let config = load(
        "[[providers]]\nkind = \"azure\"\nendpoint = \"https://x\"\ndeployments = { a = \"b\" }\n\
         bearer_token_env = \"TOKEN\"\n",
    )
    .expect("valid");
    assert!(matches!(
        &config.providers[0].api,
        ProviderApi::Azure {
            auth: AzureCredential::BearerToken(SecretSource::Env { var, .. }),
            ..
        } if var == "TOKEN"
    ));
    let err = error(
        "[[providers]]\nkind = \"azure\"\nendpoint = \"https://x\"\ndeployments = { a = \"b\" }\n\
         bearer_token_env = \"TOKEN\"\napi_key_env = \"KEY\"\n",
    );
    assert!(err.message.contains("not both"), "{err}");
}

#[test]
fn both_key_and_key_env_is_an_error() {
    let err = error("[[providers]]\nkind = \"openai\"\napi_key = \"k\"\napi_key_env = \"K\"\n");
    assert_eq!(err.line(), Some(4));
    assert!(err.message.contains("`api_key`") && err.message.contains("`api_key_env`"));
}

#[test]
fn missing_env_var_names_variable_key_and_line() {
    let config =
        load("[[providers]]\nkind = \"openai\"\nname = \"p\"\napi_key_env = \"NOPE_KEY\"\n")
            .expect("loads without the variable");
    let ProviderApi::OpenAi { api_key, .. } = &config.providers[0].api else {
        panic!("openai")
    };
    let err = api_key
        .resolve(&config.path, "p", &|_| None)
        .expect_err("variable missing");
    assert_eq!(err.line(), Some(4), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("NOPE_KEY") && text.contains("`api_key_env`"),
        "{text}"
    );
    assert!(text.contains("lbgpt.toml"), "{text}");
}

#[test]
fn ranges_are_checked() {
    let err = error("max_concurrent_requests = 0\n[[providers]]\nkind = \"openai\"\n");
    assert_eq!(err.line(), Some(1));
    assert!(err.message.contains("max_concurrent_requests"));
    let err = error("[retry]\nmax_attempts = -1\n[[providers]]\nkind = \"openai\"\n");
    assert_eq!(err.line(), Some(2));
    let err = error(
        "[retry]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 10\n[[providers]]\nkind = \"openai\"\n",
    );
    assert!(err.message.contains("initial_backoff_ms"), "{err}");
    let err = error("[[providers]]\nkind = \"openai\"\nrequest_timeout_ms = 0\n");
    assert_eq!(err.line(), Some(3));
}

#[test]
fn wrong_types_name_the_line() {
    let err = error("max_concurrent_requests = \"many\"\n[[providers]]\nkind = \"openai\"\n");
    assert_eq!(err.line(), Some(1), "{err}");
}

#[test]
fn bad_urls_are_named() {
    let err = error("[[providers]]\nkind = \"openai\"\nbase_url = \"api.openai.com\"\n");
    assert_eq!(err.line(), Some(3));
    assert!(err.message.contains("`base_url`"), "{err}");
    let err = error("[[providers]]\nkind = \"openai\"\nproxy = \"ftp://x\"\n");
    assert!(err.message.contains("`proxy`"), "{err}");
}

#[test]
fn a_url_without_host_or_with_a_bad_port_is_named_at_its_key() {
    for (url, problem) in [
        ("http://proxy.internal:99999", "port"),
        ("http://", "no host"),
        ("http://proxy internal:3128", "blank"),
    ] {
        let err = error(&format!(
            "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\nproxy = \"{url}\"\n"
        ));
        assert_eq!(err.line(), Some(4), "{err}");
        assert!(
            err.message.contains("`proxy`") && err.message.contains(problem),
            "{err}"
        );
    }
    let err = error(
        "[[providers]]\nkind = \"azure\"\nendpoint = \"https://res:443x\"\napi_key = \"k\"\n\
         deployments = { m = \"d\" }\n",
    );
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.message.contains("`endpoint`"), "{err}");
}

#[test]
fn url_and_header_errors_never_show_credentials() {
    for (line, key) in [
        ("proxy = \"http://me:SECRET@\"", "proxy"),
        ("proxy = \"ftp://me:SECRET@proxy\"", "proxy"),
        ("proxy = \"http://me:SECRET@proxy:70000\"", "proxy"),
        ("base_url = \"https://me:SECRET@\"", "base_url"),
        ("base_url = \"me:SECRET@api.example.com\"", "base_url"),
        (
            "headers = { \"bad header\" = \"Bearer SECRET\" }",
            "headers",
        ),
    ] {
        let err = error(&format!(
            "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\n{line}\n"
        ));
        assert_eq!(err.line(), Some(4), "{line}: {err}");
        assert!(err.message.contains(&format!("`{key}`")), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
    // Without credentials the line is quoted, to show the value.
    let err = error("[[providers]]\nkind = \"openai\"\nproxy = \"ftp://proxy\"\n");
    assert!(
        err.to_string().contains("| proxy = \"ftp://proxy\""),
        "{err}"
    );
}

#[test]
fn a_base_url_or_endpoint_with_a_query_is_an_error_that_shows_no_secret() {
    for (kind, line, key) in [
        (
            "openai",
            "base_url = \"https://gateway.internal/v1?key=SECRET\"",
            "base_url",
        ),
        (
            "openai",
            "base_url = \"https://gateway.internal/v1#SECRET\"",
            "base_url",
        ),
        (
            "azure",
            "endpoint = \"https://res.openai.azure.com/?code=SECRET\"",
            "endpoint",
        ),
        // A bad port and a query: the line is not quoted either.
        (
            "openai",
            "base_url = \"https://gateway:99999/v1?key=SECRET\"",
            "base_url",
        ),
    ] {
        let deployments = if kind == "azure" {
            "deployments = { m = \"d\" }\n"
        } else {
            ""
        };
        let err = error(&format!(
            "[[providers]]\nkind = \"{kind}\"\napi_key = \"k\"\n{line}\n{deployments}"
        ));
        assert_eq!(err.line(), Some(4), "{line}: {err}");
        assert!(err.message.contains(&format!("`{key}`")), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
    // A proxy's query is accepted (only the proxy's host and port are used).
    load(
        "[[providers]]\nkind = \"openai\"\napi_key = \"k\"\n\
         proxy = \"http://proxy.internal:3128/?token=SECRET\"\n",
    )
    .expect("a proxy with a query");
}

#[test]
fn an_unknown_provider_kind_lists_the_kinds() {
    let err = error("[[providers]]\nkind = \"gemini\"\napi_key = \"k\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
    assert!(
        err.message.contains("unknown provider kind \"gemini\"")
            && err.message.contains("\"openai\"")
            && err.message.contains("\"azure\""),
        "{err}"
    );
    assert!(!err.message.contains("open_ai"), "{err}");
    // The alias still reads.
    let config = Config::from_toml_str(
        Path::new("c.toml"),
        "[[providers]]\nkind = \"open_ai\"\napi_key = \"k\"\n",
    )
    .expect("open_ai is an alias of openai");
    assert_eq!(config.providers.len(), 1);
}

#[test]
fn duplicate_names_are_errors() {
    let err = error("[[providers]]\nkind = \"openai\"\nname = \"a\"\n[[providers]]\nkind = \"openai\"\nname = \"a\"\n");
    assert_eq!(err.line(), Some(6), "{err}");
    assert!(err.message.contains("\"a\""));
}

#[test]
fn no_providers_takes_every_key_of_the_environment() {
    let config = load("max_concurrent_requests = 3\n").expect("valid");
    assert!(config.providers.is_empty());
    let [group] = &config.env_groups[..] else {
        panic!("one implicit group: {:?}", config.env_groups)
    };
    assert!(group.pattern.is_none() && group.site.is_none());
    let err = config
        .resolve_env(lbgpt::env::EnvKeys::from_vars([("HOME", "/root")]))
        .expect_err("no key");
    assert!(err.message.contains("no `[[providers]]` table"), "{err}");
    assert!(err.message.contains("OPENAI_API_KEY*"), "{err}");
}

#[test]
fn bad_header_names_are_errors() {
    let err = error("[[providers]]\nkind = \"openai\"\nheaders = { \"bad header\" = \"v\" }\n");
    assert_eq!(err.line(), Some(3));
    assert!(err.message.contains("bad header"));
}

#[test]
fn missing_file_names_the_file() {
    let err = Config::load(Path::new("/nonexistent/dir/lbgpt.toml")).expect_err("missing");
    let text = err.to_string();
    assert!(text.contains("/nonexistent/dir/lbgpt.toml"), "{text}");
    assert!(text.contains("not found"), "{text}");
}

const BALANCED: &str = r#"
[balance]
strategy = "least_busy"
max_wait_ms = 2500
max_failovers = 1
breaker_failures = 3
breaker_open_ms = 10000

[[providers]]
kind = "openai"
name = "a"
weight = 3
rpm = 500
tpm = 200000

[[providers]]
kind = "openai"
name = "b"
weight = 0.5
limit_rpm = 60
limit_tpm = 90000
"#;

#[test]
fn balance_table_and_provider_limits_load() {
    let config = load(BALANCED).expect("valid config");
    let balance = &config.balance;
    assert_eq!(balance.strategy.name(), "least_busy");
    assert_eq!(balance.max_wait, Duration::from_millis(2500));
    assert_eq!(balance.max_failovers, Some(1));
    assert_eq!(balance.breaker_failures, 3);
    assert_eq!(balance.breaker_open, Duration::from_secs(10));
    let [a, b] = &config.providers[..] else {
        panic!("two providers")
    };
    assert_eq!((a.weight, a.rpm, a.tpm), (3.0, Some(500), Some(200_000)));
    // The Python lbgpt's `limit_rpm` / `limit_tpm` spellings are accepted too.
    assert_eq!((b.weight, b.rpm, b.tpm), (0.5, Some(60), Some(90_000)));
}

#[test]
fn balance_defaults() {
    let plain = load("[[providers]]\nkind = \"openai\"\n").expect("valid");
    assert_eq!(plain.balance.strategy.name(), "max_headroom");
    assert_eq!(plain.balance.max_wait, Duration::from_secs(60));
    assert_eq!(plain.balance.max_failovers, None);
    assert_eq!(plain.balance.breaker_failures, 5);
    assert_eq!(plain.balance.breaker_open, Duration::from_secs(30));
    assert_eq!(plain.providers[0].weight, 1.0);
    assert_eq!(plain.providers[0].rpm, None);
    // Weight 0 makes a standby.
    let standby = load("[[providers]]\nkind = \"openai\"\nweight = 0\n").expect("valid");
    assert_eq!(standby.providers[0].weight, 0.0);
}

#[test]
fn every_strategy_name_is_accepted() {
    for name in lbgpt_balance::Strategy::NAMES {
        let config = load(&format!(
            "[balance]\nstrategy = \"{name}\"\n[[providers]]\nkind = \"openai\"\nrpm = 10\n"
        ))
        .expect("valid");
        let expected = if *name == "random" {
            "weighted_random"
        } else {
            name
        };
        assert_eq!(config.balance.strategy.name(), expected, "{name}");
    }
}

#[test]
fn unknown_strategy_names_the_key_and_the_choices() {
    let err = error("[balance]\nstrategy = \"fastest\"\n[[providers]]\nkind = \"openai\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
    assert!(err.message.contains("`strategy`"), "{err}");
    assert!(err.message.contains("\"fastest\""), "{err}");
    assert!(
        err.message.contains("`max_headroom`") && err.message.contains("`least_latency`"),
        "{err}"
    );
}

#[test]
fn unknown_key_in_balance_names_key_and_line() {
    let err =
        error("[balance]\nstrategy = \"random\"\nmax_wait = 5\n[[providers]]\nkind = \"openai\"\n");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.message.contains("max_wait"), "{err}");
}

#[test]
fn balance_ranges_are_checked_and_named() {
    let provider = "[[providers]]\nkind = \"openai\"\n";
    for (line, key) in [
        ("max_wait_ms = -1", "max_wait_ms"),
        ("max_failovers = -2", "max_failovers"),
        ("breaker_failures = 0", "breaker_failures"),
        ("breaker_open_ms = 0", "breaker_open_ms"),
    ] {
        let err = error(&format!("[balance]\n{line}\n{provider}"));
        assert_eq!(err.line(), Some(2), "{err}");
        assert!(err.message.contains(&format!("`{key}`")), "{err}");
    }
    // Zero is fine where it means "never".
    let config = load(&format!(
        "[balance]\nmax_wait_ms = 0\nmax_failovers = 0\n{provider}"
    ))
    .expect("valid");
    assert_eq!(config.balance.max_wait, Duration::ZERO);
    assert_eq!(config.balance.max_failovers, Some(0));
}

#[test]
fn provider_weight_and_limits_are_checked_and_named() {
    for (line, key) in [
        ("weight = -1.5", "weight"),
        ("weight = nan", "weight"),
        ("weight = inf", "weight"),
        ("rpm = 0", "rpm"),
        ("tpm = -5", "tpm"),
        ("limit_rpm = 0", "limit_rpm"),
        ("limit_tpm = 0", "limit_tpm"),
    ] {
        let err = error(&format!("[[providers]]\nkind = \"openai\"\n{line}\n"));
        assert_eq!(err.line(), Some(3), "{line}: {err}");
        assert!(err.message.contains(&format!("`{key}`")), "{line}: {err}");
    }
    let err = error("[[providers]]\nkind = \"openai\"\nweight = \"heavy\"\n");
    assert_eq!(err.line(), Some(3), "{err}");
    let err = error("[[providers]]\nkind = \"openai\"\nrpm = 5\nlimit_rpm = 6\n");
    assert!(err.message.contains("duplicate key"), "{err}");
}

const ONE_PROVIDER: &str = "[[providers]]\nkind = \"openai\"\n";

#[test]
fn no_cache_table_means_no_cache() {
    assert!(load(ONE_PROVIDER).expect("valid").cache.is_none());
}

#[test]
fn a_memory_cache_has_defaults() {
    let config = load(&format!("[cache]\nkind = \"memory\"\n{ONE_PROVIDER}")).expect("valid");
    let cache = config.cache.expect("a cache");
    assert!(matches!(
        cache.store,
        CacheStoreSettings::Memory {
            max_entries: 100_000
        }
    ));
    assert_eq!(cache.ttl, None);
    assert_eq!(cache.namespace, "");
    assert_eq!(cache.describe(), "memory (at most 100000 entries)");
}

#[test]
fn every_cache_key_loads() {
    let config = load(&format!(
        "[cache]\nkind = \"memory\"\nmax_entries = 50\nttl_ms = 2_000\nnamespace = \"proj\"\n{ONE_PROVIDER}"
    ))
    .expect("valid");
    let cache = config.cache.expect("a cache");
    assert!(matches!(
        cache.store,
        CacheStoreSettings::Memory { max_entries: 50 }
    ));
    assert_eq!(cache.ttl, Some(Duration::from_secs(2)));
    assert_eq!(cache.namespace, "proj");
}

#[test]
fn a_relative_disk_path_is_taken_from_the_config_files_directory() {
    let source = format!("[cache]\nkind = \"disk\"\npath = \"answers\"\n{ONE_PROVIDER}");
    let config = Config::from_toml_str(Path::new("/etc/lbgpt/run.toml"), &source).expect("valid");
    let cache = config.cache.expect("a cache");
    match &cache.store {
        CacheStoreSettings::Disk { path } => {
            assert_eq!(path, Path::new("/etc/lbgpt/answers"));
        }
        other => panic!("a disk cache, got {other:?}"),
    }
    assert_eq!(cache.describe(), "disk (/etc/lbgpt/answers)");

    let source = format!("[cache]\nkind = \"disk\"\npath = \"/var/cache/lbgpt\"\n{ONE_PROVIDER}");
    let config = Config::from_toml_str(Path::new("/etc/lbgpt/run.toml"), &source).expect("valid");
    assert!(matches!(
        config.cache.expect("a cache").store,
        CacheStoreSettings::Disk { path } if path == Path::new("/var/cache/lbgpt")
    ));
}

#[test]
fn a_redis_url_is_kept_secret() {
    let config = load(&format!(
        "[cache]\nkind = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:6379/0\"\n{ONE_PROVIDER}"
    ))
    .expect("valid");
    let cache = config.cache.expect("a cache");
    assert!(!format!("{cache:?}").contains("hunter2"));
    assert_eq!(cache.describe(), "redis");
    let url = cache
        .redis_url(Path::new("lbgpt.toml"), &|_| None)
        .expect("inline")
        .expect("a url");
    assert_eq!(url.expose_secret(), "redis://:hunter2@127.0.0.1:6379/0");

    let config = load(&format!(
        "[cache]\nkind = \"redis\"\nurl_env = \"REDIS_URL\"\n{ONE_PROVIDER}"
    ))
    .expect("valid without the variable: it is read when the cache opens");
    let cache = config.cache.expect("a cache");
    let env = |name: &str| (name == "REDIS_URL").then(|| "redis://127.0.0.1/".to_owned());
    let url = cache
        .redis_url(Path::new("lbgpt.toml"), &env)
        .expect("set")
        .expect("a url");
    assert_eq!(url.expose_secret(), "redis://127.0.0.1/");
}

#[test]
fn cache_errors_name_the_key_and_line() {
    for (table, line, needle) in [
        ("kind = \"memcached\"", 2, "unknown variant `memcached`"),
        ("path = \"x\"", 1, "missing field `kind`"),
        ("kind = \"disk\"", 1, "needs the key `path`"),
        (
            "kind = \"disk\"\npath = \"  \"",
            3,
            "key `path`: must not be empty",
        ),
        ("kind = \"redis\"", 1, "needs the key `url`"),
        (
            "kind = \"redis\"\nurl = \"localhost:6379\"",
            3,
            "key `url`: not a Redis URL",
        ),
        (
            "kind = \"redis\"\nurl = \"rediss://host/\"",
            3,
            "TLS, rediss://, is not supported",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://h/\"\nurl_env = \"U\"",
            4,
            "keys `url` and `url_env` are both set",
        ),
        (
            "kind = \"redis\"\nurl_env = \" \"",
            3,
            "key `url_env`: must not be empty",
        ),
        (
            "kind = \"memory\"\npath = \"x\"",
            3,
            "key `path` belongs to kind = \"disk\" caches, but this cache has kind = \"memory\"",
        ),
        (
            "kind = \"disk\"\npath = \"x\"\nmax_entries = 5",
            4,
            "key `max_entries` belongs to kind = \"memory\" caches",
        ),
        (
            "kind = \"redis\"\nurl_env = \"U\"\npath = \"x\"",
            4,
            "key `path` belongs to kind = \"disk\" caches",
        ),
        (
            "kind = \"memory\"\nmax_entries = 0",
            3,
            "key `max_entries`: must be at least 1",
        ),
        (
            "kind = \"memory\"\nttl_ms = -1",
            3,
            "key `ttl_ms`: must be at least 1",
        ),
        (
            "kind = \"memory\"\nttl_secs = 10",
            3,
            "unknown key `ttl_secs`",
        ),
        ("kind = \"memory\"\nnamespace = 7", 3, "expected a string"),
    ] {
        let err = error(&format!("[cache]\n{table}\n{ONE_PROVIDER}"));
        assert_eq!(err.line(), Some(line), "{table}: {err}");
        assert!(err.message.contains(needle), "{table}: {err}");
    }
}

#[test]
fn no_semantic_cache_table_means_no_semantic_cache() {
    assert!(load(ONE_PROVIDER).expect("valid").semantic_cache.is_none());
}

#[test]
fn every_semantic_cache_key_loads_and_relative_paths_follow_the_config_file() {
    let source = format!(
        "[semantic_cache]\nmodel_dir = \"models/minilm\"\nruntime_library = \"/opt/ort/libonnxruntime.so\"\n\
         method = \"user_only\"\nthreshold = 0.9\nguard = false\nindex_dir = \"semantic\"\n\
         max_entries = 5_000\nallow_unsafe = true\nsessions = 2\nmax_batch = 8\n{ONE_PROVIDER}"
    );
    let config = Config::from_toml_str(Path::new("/etc/lbgpt/lbgpt.toml"), &source).expect("valid");
    let section = config.semantic_cache.expect("a semantic cache");
    let settings = &section.settings;
    assert_eq!(
        settings.model_dir.as_deref(),
        Some(Path::new("/etc/lbgpt/models/minilm"))
    );
    assert_eq!(
        settings.runtime_library.as_deref(),
        Some(Path::new("/opt/ort/libonnxruntime.so"))
    );
    assert_eq!(settings.method.as_deref(), Some("user_only"));
    assert_eq!(settings.threshold, Some(0.9));
    assert_eq!(settings.guard, Some(false));
    assert_eq!(
        settings.index_dir.as_deref(),
        Some(Path::new("/etc/lbgpt/semantic"))
    );
    assert_eq!(settings.max_entries, Some(5_000));
    assert_eq!(settings.allow_unsafe, Some(true));
    assert_eq!(settings.sessions, Some(2));
    assert_eq!(settings.max_batch, Some(8));
    assert_eq!(
        section.describe(),
        "threshold 0.9, guard off, index /etc/lbgpt/semantic"
    );

    let empty = load(&format!("[semantic_cache]\n{ONE_PROVIDER}")).expect("valid");
    let section = empty.semantic_cache.expect("a semantic cache");
    assert_eq!(
        section.settings,
        lbgpt::semantic::SemanticCacheSettings::default()
    );
    assert_eq!(
        section.describe(),
        "threshold 0.85, guard on, index in memory"
    );
}

#[test]
fn semantic_cache_errors_name_the_key_and_line() {
    for (table, line, needle) in [
        (
            "method = \"everything\"",
            2,
            "`[semantic_cache]` key `method`: unknown method \"everything\"; expected one of",
        ),
        (
            "threshold = 1.5",
            2,
            "`[semantic_cache]` key `threshold`: must be between 0 and 1",
        ),
        (
            "threshold = -0.1",
            2,
            "key `threshold`: must be between 0 and 1",
        ),
        (
            "threshold = \"high\"",
            2,
            "invalid type: string \"high\", expected f64",
        ),
        (
            "max_entries = 0",
            2,
            "`[semantic_cache]` key `max_entries`: must be at least 1, got 0",
        ),
        (
            "sessions = 0",
            2,
            "`[semantic_cache]` key `sessions`: must be between 1 and 64",
        ),
        (
            "max_batch = 0",
            2,
            "`[semantic_cache]` key `max_batch`: must be between 1 and 4096, got 0",
        ),
        (
            "max_batch = 5000",
            2,
            "`[semantic_cache]` key `max_batch`: must be between 1 and 4096",
        ),
        ("guard = \"yes\"", 2, "expected a boolean"),
        (
            "index_dir = \" \"",
            2,
            "`[semantic_cache]` key `index_dir`: must not be empty",
        ),
        ("threshhold = 0.9", 2, "unknown key `threshhold`"),
    ] {
        let err = error(&format!("[semantic_cache]\n{table}\n{ONE_PROVIDER}"));
        assert_eq!(err.line(), Some(line), "{table}: {err}");
        assert!(err.message.contains(needle), "{table}: {err}");
    }
}

fn vars(pairs: &[(&str, &str)]) -> lbgpt::env::EnvKeys {
    lbgpt::env::EnvKeys::from_vars(pairs.iter().copied())
}

#[test]
fn from_env_members_take_the_place_of_their_table_with_their_limits() {
    let config = load(
        "[[providers]]\nkind = \"openai\"\nname = \"first\"\napi_key = \"k\"\n\
         [[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\ntpm = 1000\nweight = 2\n\
         request_timeout_ms = 5000\nheaders = { \"x-team\" = \"a\" }\n\
         [[providers]]\nkind = \"openai\"\nname = \"last\"\napi_key = \"k\"\n\
         [env.OPENAI_API_KEY_10]\nrpm = 60\nlimit_tpm = 50\n",
    )
    .expect("valid");
    assert_eq!(
        config.providers.len(),
        2,
        "members come when the environment is read"
    );
    let config = config
        .resolve_env(vars(&[
            ("OPENAI_API_KEY_10", "sk-ten"),
            ("OPENAI_API_KEY_2", "sk-two"),
            ("OPENAI_API_PROXY_2", "http://proxy.internal:3128"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ]))
        .expect("resolves");
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["first", "OPENAI_API_KEY_2", "OPENAI_API_KEY_10", "last"]
    );
    let (two, ten) = (&config.providers[1], &config.providers[2]);
    assert_eq!((two.weight, two.rpm, two.tpm), (2.0, None, Some(1000)));
    assert_eq!((ten.weight, ten.rpm, ten.tpm), (2.0, Some(60), Some(50)));
    assert_eq!(
        two.transport.proxy.as_deref(),
        Some("http://proxy.internal:3128")
    );
    assert_eq!(
        ten.transport.proxy, None,
        "no proxy variable: the system settings"
    );
    assert_eq!(ten.transport.request_timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        ten.transport.headers.get("x-team").map(String::as_str),
        Some("a")
    );
    let ProviderApi::OpenAi {
        base_url, api_key, ..
    } = &ten.api
    else {
        panic!("openai")
    };
    assert_eq!(base_url, "http://127.0.0.1:9/v1");
    let key = api_key
        .resolve(&config.path, &ten.name, &|name| {
            config.lookup(name, &|_| None)
        })
        .expect("the key");
    assert_eq!(key.expose_secret(), "sk-ten");
    let provenance = two.from_env.as_ref().expect("from the environment");
    assert_eq!(
        provenance.proxy_variable.as_deref(),
        Some("OPENAI_API_PROXY_2")
    );
    assert_eq!(provenance.url_variable.as_deref(), Some("OPENAI_BASE_URL"));
    assert!(config.providers[0].from_env.is_none());
    assert!(config.env_groups.is_empty(), "resolved");
    assert!(!format!("{config:?}").contains("sk-ten"), "{config:?}");
}

#[test]
fn azure_members_from_the_environment() {
    let config = load("[[providers]]\nfrom_env = \"AZURE_OPENAI_API_KEY*\"\n")
        .expect("valid")
        .resolve_env(vars(&[
            ("AZURE_OPENAI_API_KEY_EU", "azure-eu"),
            ("AZURE_OPENAI_ENDPOINT_EU", "https://eu.example"),
            ("AZURE_OPENAI_DEPLOYMENTS", "gpt-4o-mini=mini"),
            // Another kind's stray setting does not matter to this pattern.
            ("OPENAI_API_PROXY_9", "http://x:1"),
        ]))
        .expect("resolves");
    let [eu] = &config.providers[..] else {
        panic!("one provider")
    };
    assert_eq!(eu.name, "AZURE_OPENAI_API_KEY_EU");
    let ProviderApi::Azure {
        endpoint,
        deployments,
        api_version,
        auth: AzureCredential::ApiKey(SecretSource::Discovered { var }),
    } = &eu.api
    else {
        panic!("azure with a discovered key: {:?}", eu.api)
    };
    assert_eq!(endpoint, "https://eu.example");
    assert_eq!(
        deployments.get("gpt-4o-mini").map(String::as_str),
        Some("mini")
    );
    assert_eq!(api_version, &None);
    assert_eq!(var, "AZURE_OPENAI_API_KEY_EU");
}

#[test]
fn from_env_tables_refuse_what_each_key_sets_itself() {
    for (key_line, key) in [
        ("kind = \"openai\"", "kind"),
        ("name = \"x\"", "name"),
        ("api_key_env = \"K\"", "api_key_env"),
        ("proxy = \"none\"", "proxy"),
        ("base_url = \"http://x/v1\"", "base_url"),
        ("deployments = { a = \"b\" }", "deployments"),
        ("organization = \"org\"", "organization"),
    ] {
        let err = error(&format!(
            "[[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n{key_line}\n"
        ));
        assert_eq!(err.line(), Some(3), "{err}");
        assert!(
            err.message
                .starts_with(&format!("key `{key}` is not used with `from_env`")),
            "{err}"
        );
    }
    let err = error("[[providers]]\nfrom_env = \"OPENAI_KEY*\"\n");
    assert_eq!(err.line(), Some(2), "{err}");
    assert!(
        err.message.contains("must start with `OPENAI_API_KEY`"),
        "{err}"
    );
    let err = error("[[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\nrpm = 0\n");
    assert!(
        err.message.contains("key `rpm`: must be at least 1"),
        "{err}"
    );
}

#[test]
fn env_tables_name_key_variables_and_need_keys_from_the_environment() {
    let err = error("[env.OPENAI_API_KEYS]\nrpm = 5\n");
    assert_eq!(err.line(), Some(1), "{err}");
    assert!(
        err.message.contains("not the name of a key variable"),
        "{err}"
    );
    let err = error("[env.OPENAI_API_KEY_1]\nrpm = 5\nburst = 2\n");
    assert!(err.message.contains("unknown key `burst`"), "{err}");
    let err = error("[env.OPENAI_API_KEY_1]\nweight = -1\n");
    assert!(
        err.message.contains("key `weight`: must be a number >= 0"),
        "{err}"
    );
    let err = error("[[providers]]\nkind = \"openai\"\n\n[env.OPENAI_API_KEY_1]\nrpm = 5\n");
    assert_eq!(err.line(), Some(4), "{err}");
    assert!(
        err.message
            .contains("no `[[providers]]` table has `from_env`"),
        "{err}"
    );
}

#[test]
fn a_key_is_used_once() {
    let err = load(
        "[[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n[[providers]]\nfrom_env = \"OPENAI_API_KEY_2\"\n",
    )
    .expect("valid")
    .resolve_env(vars(&[("OPENAI_API_KEY_2", "sk-2")]))
    .expect_err("twice");
    assert_eq!(err.line(), Some(4), "{err}");
    assert!(
        err.message
            .contains("`OPENAI_API_KEY_2` is already used by `from_env = \"OPENAI_API_KEY*\"`"),
        "{err}"
    );
    // The default variable of a provider without `api_key_env` counts too.
    let err =
        load("[[providers]]\nkind = \"openai\"\n[[providers]]\nfrom_env = \"OPENAI_API_KEY*\"\n")
            .expect("valid")
            .resolve_env(vars(&[("OPENAI_API_KEY", "sk-0")]))
            .expect_err("twice");
    assert!(
        err.message
            .contains("already used by provider \"openai-1\""),
        "{err}"
    );
}

#[test]
fn without_a_file_every_key_of_the_environment_is_a_provider() {
    let missing = Path::new("lbgpt.toml");
    let config = Config::from_environment(
        missing,
        vars(&[("OPENAI_API_KEY_2", "sk-2"), ("OPENAI_API_KEY_1", "sk-1")]),
    )
    .expect("keys");
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["OPENAI_API_KEY_1", "OPENAI_API_KEY_2"]);
    assert_eq!(config.max_concurrent_requests, 5);
    assert!(config.cache.is_none());

    let err = Config::from_environment(missing, vars(&[("HOME", "/root")])).expect_err("none");
    let text = err.to_string();
    assert!(
        text.starts_with("no config file (lbgpt.toml does not exist) and no `OPENAI_API_KEY*`")
            && text.contains("--config"),
        "{text}"
    );
    let err =
        Config::from_environment(missing, vars(&[("OPENAI_API_KEY_1", "")])).expect_err("empty");
    assert_eq!(
        err.to_string(),
        "keys from the environment (no config file): `OPENAI_API_KEY_1` is set but empty"
    );
}

#[test]
fn load_for_run_reads_the_file_when_there_is_one_or_it_was_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let named = dir.path().join("missing.toml");
    let err = Config::load_for_run(&named, true).expect_err("named but missing");
    assert!(err.to_string().contains("file not found"), "{err}");
    let file = dir.path().join("lbgpt.toml");
    std::fs::write(
        &file,
        "[[providers]]\nkind = \"openai\"\nname = \"mine\"\napi_key = \"k\"\n",
    )
    .expect("written");
    let config = Config::load_for_run(&file, false).expect("the default file exists");
    assert_eq!(config.providers[0].name, "mine");
}

#[test]
fn lookups_prefer_the_process_environment_then_dotenv() {
    let config = Config::from_environment(
        Path::new("lbgpt.toml"),
        vars(&[("OPENAI_API_KEY", "sk-from-the-list"), ("EXTRA", "x")]),
    )
    .expect("keys");
    let env = |name: &str| (name == "EXTRA").then(|| "from-env".to_owned());
    assert_eq!(config.lookup("EXTRA", &env).as_deref(), Some("from-env"));
    assert_eq!(
        config.lookup("OPENAI_API_KEY", &env).as_deref(),
        Some("sk-from-the-list")
    );
    assert_eq!(config.lookup("NOPE", &env), None);
}
