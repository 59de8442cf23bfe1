//! `lbgpt::env`: keys, proxies, base URLs and Azure settings found in a set of variables and a
//! `.env` file, and a balanced client over them against the simulator.

mod common;

use common::{assert_answers, request};
use lbgpt::env::{EnvError, EnvKeys, EnvKind, EnvMember, KeyPattern, VarOrigin};
use lbgpt::{BalancedGpt, Strategy};
use lbgpt_sim::{KeyConfig, SimConfig, Simulator};
use secrecy::ExposeSecret;
use std::path::Path;

/// A key long enough to be shown redacted; `SECRET` marks every value that must never be
/// printed.
fn key(n: u32) -> String {
    format!("sk-test-SECRET-{n:012}")
}

fn names(members: &[EnvMember]) -> Vec<&str> {
    members.iter().map(EnvMember::name).collect()
}

fn members(vars: &[(&str, &str)]) -> Result<Vec<EnvMember>, EnvError> {
    EnvKeys::from_vars(vars.iter().copied()).members()
}

fn error(vars: &[(&str, &str)]) -> EnvError {
    match members(vars) {
        Ok(found) => panic!("expected an error, got {found:?}"),
        Err(err) => err,
    }
}

/// The error's text and `Debug` hold no value marked `SECRET`.
fn assert_no_secret(err: &EnvError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains("SECRET"), "{text}");
}

#[test]
fn every_key_variable_is_a_member_in_numeric_order() {
    let (k0, k1, k2, k10, kx) = (key(0), key(1), key(2), key(10), key(20));
    let found = members(&[
        ("OPENAI_API_KEY_10", &k10),
        ("OPENAI_API_KEY_2", &k2),
        ("HOME", "/root"),
        ("OPENAI_API_KEY", &k0),
        ("OPENAI_API_KEY_1", &k1),
        ("OPENAI_API_KEY2", &kx),
        ("OPENAI_ORG", "ignored: not a key variable"),
    ])
    .expect("members");
    assert_eq!(
        names(&found),
        [
            "OPENAI_API_KEY",
            "OPENAI_API_KEY2",
            "OPENAI_API_KEY_1",
            "OPENAI_API_KEY_2",
            "OPENAI_API_KEY_10"
        ]
    );
    // Each member holds its own key.
    let keys: Vec<&str> = found.iter().map(|m| m.key().expose_secret()).collect();
    assert_eq!(
        keys,
        [k0.as_str(), &kx, &k1, &k2, &k10],
        "each member holds its own key"
    );
    assert!(found.iter().all(|m| m.kind() == EnvKind::OpenAi));
    assert_eq!(found[3].redacted_key(), "sk-…0002");
    assert_eq!(found[3].url_or_default(), "https://api.openai.com/v1");
    // The order does not depend on the order the variables came in.
    let reversed = members(&[
        ("OPENAI_API_KEY_1", &k1),
        ("OPENAI_API_KEY_10", &k10),
        ("OPENAI_API_KEY2", &kx),
        ("OPENAI_API_KEY", &k0),
        ("OPENAI_API_KEY_2", &k2),
    ])
    .expect("members");
    assert_eq!(names(&reversed), names(&found));
}

#[test]
fn names_that_only_look_like_key_variables_are_refused_by_name() {
    for bad in ["OPENAI_API_KEYS", "OPENAI_API_KEY_", "OPENAI_API_KEY-2"] {
        let err = error(&[("OPENAI_API_KEY_1", &key(1)), (bad, "sk-SECRET-value")]);
        assert_eq!(
            err,
            EnvError::UnrecognisedName {
                variable: bad.to_owned(),
                prefix: "OPENAI_API_KEY"
            }
        );
        assert!(err.to_string().contains(bad), "{err}");
        assert_no_secret(&err);
    }
    let err = error(&[("AZURE_OPENAI_ENDPOINTS", "https://x.example")]);
    assert!(
        matches!(&err, EnvError::UnrecognisedName { variable, .. } if variable == "AZURE_OPENAI_ENDPOINTS"),
        "{err:?}"
    );
}

#[test]
fn a_proxy_of_its_own_else_the_shared_one_else_none() {
    let found = members(&[
        ("OPENAI_API_KEY_1", &key(1)),
        ("OPENAI_API_KEY_2", &key(2)),
        ("OPENAI_API_KEY_3", &key(3)),
        ("OPENAI_API_PROXY", "http://shared.proxy:3128"),
        (
            "OPENAI_API_PROXY_2",
            "socks5://user:pw-SECRET@own.proxy:1080",
        ),
        ("OPENAI_API_PROXY_3", "none"),
    ])
    .expect("members");
    let proxies: Vec<(&str, &str)> = found
        .iter()
        .map(|m| {
            let proxy = m.proxy().expect("a proxy");
            (proxy.variable.as_str(), proxy.value.as_str())
        })
        .collect();
    assert_eq!(
        proxies,
        [
            ("OPENAI_API_PROXY", "http://shared.proxy:3128"),
            (
                "OPENAI_API_PROXY_2",
                "socks5://user:pw-SECRET@own.proxy:1080"
            ),
            ("OPENAI_API_PROXY_3", "none"),
        ]
    );
    let debug = format!("{found:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(debug.contains("own.proxy"), "{debug}");

    let without = members(&[("OPENAI_API_KEY_1", &key(1))]).expect("members");
    assert!(
        without[0].proxy().is_none(),
        "no proxy variable: system settings"
    );
}

#[test]
fn settings_without_their_key_are_errors() {
    let err = error(&[
        ("OPENAI_API_KEY_1", &key(1)),
        ("OPENAI_API_PROXY_3", "http://user:SECRET@proxy:3128"),
    ]);
    assert_eq!(
        err,
        EnvError::WithoutKey {
            variable: "OPENAI_API_PROXY_3".to_owned(),
            key_variable: "OPENAI_API_KEY_3".to_owned()
        }
    );
    assert_no_secret(&err);

    let err = error(&[("OPENAI_BASE_URL_EU", "https://eu.example/v1")]);
    assert!(
        err.to_string().contains("`OPENAI_BASE_URL_EU`")
            && err.to_string().contains("`OPENAI_API_KEY_EU`"),
        "{err}"
    );

    // A setting without suffix serves every key of its kind; with no key of that kind it has
    // nothing to serve.
    let err = error(&[
        ("OPENAI_API_KEY", &key(0)),
        ("AZURE_OPENAI_ENDPOINT", "https://my.openai.azure.com"),
    ]);
    assert_eq!(
        err,
        EnvError::WithoutKey {
            variable: "AZURE_OPENAI_ENDPOINT".to_owned(),
            key_variable: "AZURE_OPENAI_API_KEY*".to_owned()
        }
    );
    // ...unless only OpenAI keys are asked for.
    let keys = EnvKeys::from_vars([
        ("OPENAI_API_KEY", key(0)),
        (
            "AZURE_OPENAI_ENDPOINT",
            "https://my.openai.azure.com".to_owned(),
        ),
    ]);
    let openai = keys
        .members_matching(&KeyPattern::all(EnvKind::OpenAi))
        .expect("the Azure setting is not looked at");
    assert_eq!(names(&openai), ["OPENAI_API_KEY"]);
}

#[test]
fn empty_values_are_errors_naming_the_variable() {
    for value in ["", "   "] {
        let err = error(&[("OPENAI_API_KEY_1", &key(1)), ("OPENAI_API_KEY_2", value)]);
        assert_eq!(
            err,
            EnvError::Empty {
                variable: "OPENAI_API_KEY_2".to_owned(),
                origin: VarOrigin::Environment
            }
        );
        assert!(err
            .to_string()
            .contains("`OPENAI_API_KEY_2` is set but empty"));
    }
    // An empty setting does not fall back to the shared one: it is a mistake.
    let err = error(&[
        ("OPENAI_API_KEY_1", &key(1)),
        ("OPENAI_API_PROXY", "http://shared:3128"),
        ("OPENAI_API_PROXY_1", ""),
    ]);
    assert!(
        matches!(&err, EnvError::Empty { variable, .. } if variable == "OPENAI_API_PROXY_1"),
        "{err:?}"
    );
}

#[test]
fn malformed_urls_are_errors_that_do_not_quote_them() {
    for (variable, value) in [
        ("OPENAI_API_PROXY_1", "proxy.internal:3128/SECRET"),
        ("OPENAI_API_PROXY_1", "ftp://user:SECRET@proxy"),
        ("OPENAI_BASE_URL_1", "api.example.com/v1?SECRET"),
        ("OPENAI_BASE_URL_1", "https:///SECRET"),
    ] {
        let err = error(&[("OPENAI_API_KEY_1", &key(1)), (variable, value)]);
        assert!(
            matches!(&err, EnvError::InvalidUrl { variable: v, .. } if v == variable),
            "{variable}={value}: {err:?}"
        );
        assert!(err.to_string().contains("http://"), "{err}");
        assert_no_secret(&err);
    }
}

#[test]
fn azure_keys_with_endpoints_deployments_and_api_versions() {
    let found = members(&[
        ("AZURE_OPENAI_API_KEY_EU", &key(1)),
        ("AZURE_OPENAI_API_KEY_US", &key(2)),
        ("AZURE_OPENAI_ENDPOINT", "https://shared.openai.azure.com"),
        ("AZURE_OPENAI_ENDPOINT_EU", "https://eu.openai.azure.com"),
        (
            "AZURE_OPENAI_DEPLOYMENTS",
            "gpt-4o-mini = mini-prod, gpt-4o=gpt4o-prod,",
        ),
        ("AZURE_OPENAI_API_VERSION_US", "2025-01-01-preview"),
        ("OPENAI_API_VERSION", "2024-06-01"),
        ("OPENAI_API_KEY", &key(3)),
    ])
    .expect("members");
    assert_eq!(
        names(&found),
        [
            "AZURE_OPENAI_API_KEY_EU",
            "AZURE_OPENAI_API_KEY_US",
            "OPENAI_API_KEY"
        ]
    );
    let (eu, us) = (&found[0], &found[1]);
    assert_eq!(eu.kind(), EnvKind::Azure);
    assert_eq!(eu.url_or_default(), "https://eu.openai.azure.com");
    assert_eq!(us.url_or_default(), "https://shared.openai.azure.com");
    let deployments = eu.deployments();
    assert_eq!(
        deployments.get("gpt-4o-mini").map(String::as_str),
        Some("mini-prod")
    );
    assert_eq!(
        deployments.get("gpt-4o").map(String::as_str),
        Some("gpt4o-prod")
    );
    assert_eq!(
        eu.api_version().map(|v| v.value.as_str()),
        Some("2024-06-01")
    );
    assert_eq!(
        us.api_version().map(|v| v.variable.as_str()),
        Some("AZURE_OPENAI_API_VERSION_US")
    );
    let config = eu.azure_config().expect("an Azure member");
    assert_eq!(config.get_name(), "AZURE_OPENAI_API_KEY_EU");
    assert_eq!(config.get_api_version(), "2024-06-01");
    assert!(eu.openai_config().is_none());
    assert_eq!(
        found[2].openai_config().expect("openai").get_name(),
        "OPENAI_API_KEY"
    );
}

#[test]
fn azure_keys_need_an_endpoint_and_deployments() {
    let err = error(&[
        ("AZURE_OPENAI_API_KEY_2", &key(2)),
        ("AZURE_OPENAI_DEPLOYMENTS", "m=d"),
    ]);
    assert_eq!(
        err,
        EnvError::MissingEndpoint {
            key_variable: "AZURE_OPENAI_API_KEY_2".to_owned(),
            looked_at: vec![
                "AZURE_OPENAI_ENDPOINT_2".to_owned(),
                "AZURE_OPENAI_ENDPOINT".to_owned()
            ]
        }
    );
    let err = error(&[
        ("AZURE_OPENAI_API_KEY", &key(2)),
        ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"),
    ]);
    assert!(
        err.to_string()
            .contains("`AZURE_OPENAI_API_KEY` has no deployments: set `AZURE_OPENAI_DEPLOYMENTS`"),
        "{err}"
    );
    for (map, problem) in [
        ("gpt-4o", "is not MODEL=DEPLOYMENT"),
        (
            "gpt-4o=",
            "needs a model before `=` and a deployment after it",
        ),
        ("a=b,a=c", "model \"a\" is mapped twice"),
        (" , ", "holds no MODEL=DEPLOYMENT pair"),
    ] {
        let err = error(&[
            ("AZURE_OPENAI_API_KEY", &key(2)),
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"),
            ("AZURE_OPENAI_DEPLOYMENTS", map),
        ]);
        let text = err.to_string();
        assert!(
            text.starts_with("`AZURE_OPENAI_DEPLOYMENTS`: ") && text.contains(problem),
            "{map:?}: {text}"
        );
    }
}

#[test]
fn patterns_pick_one_kind_one_prefix_or_one_variable() {
    let keys = EnvKeys::from_vars([
        ("OPENAI_API_KEY", key(0)),
        ("OPENAI_API_KEY_EU_1", key(1)),
        ("OPENAI_API_KEY_EU_2", key(2)),
        ("OPENAI_API_KEY_US", key(3)),
    ]);
    let pick = |pattern: &str| {
        let pattern = KeyPattern::parse(pattern).expect("pattern");
        names(&keys.members_matching(&pattern).expect("members"))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(pick("OPENAI_API_KEY*").len(), 4);
    assert_eq!(
        pick("OPENAI_API_KEY_EU*"),
        ["OPENAI_API_KEY_EU_1", "OPENAI_API_KEY_EU_2"]
    );
    assert_eq!(pick("OPENAI_API_KEY_US"), ["OPENAI_API_KEY_US"]);
    assert!(pick("AZURE_OPENAI_API_KEY*").is_empty());
    for bad in [
        "HOME",
        "OPENAI_API_KEY_*_2",
        "OPENAI_API_KEYS*",
        "OPENAI_API_KEYS",
        "*",
    ] {
        let err = KeyPattern::parse(bad).expect_err(bad);
        assert!(
            matches!(&err, EnvError::InvalidPattern { pattern, .. } if pattern == bad),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn a_dotenv_file_fills_in_what_the_environment_does_not_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        format!(
            "# keys of the team\n\
             OPENAI_API_KEY_1={}\n\
             OPENAI_API_KEY_2=\"{}\"   # double-quoted, then a comment\n\
             export OPENAI_API_KEY_3='{}'\n\
             \n\
             OPENAI_API_PROXY_3=http://proxy.internal:3128 # inline comment\n\
             OPENAI_API_KEY_2={}\n",
            key(100),
            key(2),
            key(3),
            key(200),
        ),
    )
    .expect("write .env");
    let keys = EnvKeys::from_vars([("OPENAI_API_KEY_1", key(1))])
        .with_dotenv_file(&path)
        .expect("parses");
    let found = keys.members().expect("members");
    assert_eq!(
        names(&found),
        ["OPENAI_API_KEY_1", "OPENAI_API_KEY_2", "OPENAI_API_KEY_3"]
    );
    let values: Vec<&str> = found.iter().map(|m| m.key().expose_secret()).collect();
    // The environment's value wins; in the file the first definition wins; quotes are removed.
    assert_eq!(values, [key(1), key(2), key(3)]);
    assert_eq!(found[0].key_origin(), &VarOrigin::Environment);
    assert_eq!(found[1].key_origin(), &VarOrigin::DotEnv(path.clone()));
    assert_eq!(
        found[2].proxy().map(|p| p.value.as_str()),
        Some("http://proxy.internal:3128")
    );
    assert_eq!(keys.get("OPENAI_API_KEY_1"), Some(key(1).as_str()));
    assert_eq!(
        keys.origin("OPENAI_API_KEY_3"),
        Some(&VarOrigin::DotEnv(path))
    );
    assert!(!format!("{keys:?}").contains("SECRET"), "{keys:?}");
}

#[test]
fn dotenv_files_are_read_in_order_each_once_after_the_process_environment() {
    let project = tempfile::tempdir().expect("temp dir");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let first = project.path().join(".env");
    let second = elsewhere.path().join(".env");
    // Names no process environment sets, so that only the files decide.
    std::fs::write(
        &first,
        "LBGPT_ENV_TEST_BOTH=from-first\nLBGPT_ENV_TEST_FIRST=only-first\n",
    )
    .expect("write");
    std::fs::write(
        &second,
        "LBGPT_ENV_TEST_BOTH=from-second\nLBGPT_ENV_TEST_SECOND=only-second\n",
    )
    .expect("write");
    // The first file again by another path: read once.
    let again = project.path().join("sub").join("..").join(".env");
    std::fs::create_dir(project.path().join("sub")).expect("dir");
    let missing = project.path().join("missing.env");
    let keys = EnvKeys::from_process_env_and_dotenv_files([&first, &missing, &second, &again])
        .expect("parses");
    assert_eq!(keys.get("LBGPT_ENV_TEST_BOTH"), Some("from-first"));
    assert_eq!(keys.get("LBGPT_ENV_TEST_FIRST"), Some("only-first"));
    assert_eq!(keys.get("LBGPT_ENV_TEST_SECOND"), Some("only-second"));
    assert_eq!(
        keys.origin("LBGPT_ENV_TEST_BOTH"),
        Some(&VarOrigin::DotEnv(first.clone()))
    );
    assert_eq!(
        keys.origin("LBGPT_ENV_TEST_SECOND"),
        Some(&VarOrigin::DotEnv(second.clone()))
    );
    assert_eq!(keys.dotenv_files(), [first.clone(), missing, second]);
    // The process environment wins over every file.
    let path = std::env::var("PATH").expect("PATH is set");
    std::fs::write(&first, "PATH=/from/the/file\n").expect("write");
    let keys = EnvKeys::from_process_env_and_dotenv_files([&first]).expect("parses");
    assert_eq!(keys.get("PATH"), Some(path.as_str()));
    assert_eq!(keys.origin("PATH"), Some(&VarOrigin::Environment));
}

#[test]
fn urls_are_shown_without_credentials_query_or_fragment() {
    use lbgpt::env::redact_url;
    for (url, shown) in [
        (
            "https://gateway.internal/v1?key=SECRET",
            "https://gateway.internal/v1?***",
        ),
        (
            "https://gateway.internal/v1?key=SECRET#SECRET",
            "https://gateway.internal/v1?***",
        ),
        (
            "https://gateway.internal/v1#SECRET",
            "https://gateway.internal/v1#***",
        ),
        (
            "http://gateway.internal?SECRET",
            "http://gateway.internal?***",
        ),
        (
            "http://me:SECRET@proxy.internal:3128/?token=SECRET",
            "http://***@proxy.internal:3128/?***",
        ),
        ("me:SECRET@proxy.internal", "***@proxy.internal"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("none", "none"),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
    }
}

#[test]
fn a_base_url_or_endpoint_with_a_query_is_an_error_that_does_not_quote_it() {
    for (variable, value) in [
        (
            "OPENAI_BASE_URL_1",
            "https://gateway.internal/v1?key=SECRET",
        ),
        ("OPENAI_BASE_URL", "https://gateway.internal/v1#SECRET"),
    ] {
        let err = error(&[("OPENAI_API_KEY_1", &key(1)), (variable, value)]);
        assert!(
            matches!(&err, EnvError::InvalidUrl { variable: v, .. } if v == variable),
            "{variable}={value}: {err:?}"
        );
        assert!(err.to_string().contains("appended"), "{err}");
        assert_no_secret(&err);
    }
    let err = error(&[
        ("AZURE_OPENAI_API_KEY", &key(1)),
        (
            "AZURE_OPENAI_ENDPOINT",
            "https://res.openai.azure.com/?code=SECRET",
        ),
        ("AZURE_OPENAI_DEPLOYMENTS", "gpt-4o-mini=mini"),
    ]);
    assert!(
        matches!(&err, EnvError::InvalidUrl { variable, .. } if variable == "AZURE_OPENAI_ENDPOINT"),
        "{err:?}"
    );
    assert_no_secret(&err);
    // A proxy's query is not an error (the proxy is only connected to), but never shown.
    let found = members(&[
        ("OPENAI_API_KEY_1", &key(1)),
        (
            "OPENAI_API_PROXY",
            "http://proxy.internal:3128/?token=SECRET",
        ),
    ])
    .expect("members");
    let debug = format!("{found:?}");
    assert!(
        !debug.contains("SECRET") && debug.contains("proxy.internal:3128/?***"),
        "{debug}"
    );
}

#[test]
fn a_variable_set_empty_still_wins_over_the_dotenv_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keys.env");
    std::fs::write(&path, format!("OPENAI_API_KEY_1={}\n", key(1))).expect("write");
    let err = EnvKeys::from_vars([("OPENAI_API_KEY_1", "")])
        .with_dotenv_file(&path)
        .expect("parses")
        .members()
        .expect_err("empty");
    assert_eq!(
        err,
        EnvError::Empty {
            variable: "OPENAI_API_KEY_1".to_owned(),
            origin: VarOrigin::Environment
        }
    );
}

#[test]
fn dotenv_errors_name_the_file_and_line_never_the_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "OPENAI_API_KEY_1=sk-fine-SECRET-000000000\n# a comment\nOPENAI_API_KEY_2='sk-SECRET-unterminated\n",
    )
    .expect("write");
    let err = EnvKeys::default()
        .with_dotenv_file(&path)
        .expect_err("parse error");
    let EnvError::DotEnv { line, .. } = &err else {
        panic!("a .env error: {err:?}")
    };
    assert_eq!(*line, Some(3), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(".env, line 3") && text.contains("OPENAI_API_KEY_2"),
        "{text}"
    );
    assert_no_secret(&err);

    let missing = EnvKeys::default()
        .with_dotenv_file(dir.path().join("nowhere.env"))
        .expect_err("missing");
    assert!(
        missing.to_string().contains("nowhere.env: file not found"),
        "{missing}"
    );
}

#[test]
fn no_keys_is_an_error_for_providers_and_an_empty_list_for_members() {
    let keys = EnvKeys::from_vars([("HOME", "/root")]);
    assert!(keys.members().expect("no error").is_empty());
    let err = keys.providers().expect_err("no keys");
    assert_eq!(err, EnvError::NoKeys { pattern: None });
    let as_lbgpt: lbgpt::Error = err.into();
    assert!(
        matches!(&as_lbgpt, lbgpt::Error::Config(text) if text.contains("OPENAI_API_KEY*")),
        "{as_lbgpt:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_client_over_the_environments_keys_uses_every_key_under_its_variable() {
    let (k1, k2, azure) = (key(1), key(2), "azure-test-SECRET-00000000001".to_owned());
    let sim = Simulator::start(
        SimConfig::new()
            .key(KeyConfig::new(&k1))
            .key(KeyConfig::new(&k2))
            .key(KeyConfig::new(&azure)),
    )
    .await
    .expect("simulator starts");
    let keys = EnvKeys::from_vars([
        ("OPENAI_API_KEY_1", k1.clone()),
        ("OPENAI_API_KEY_2", k2.clone()),
        ("OPENAI_BASE_URL", sim.base_url()),
        ("OPENAI_API_PROXY", "none".to_owned()),
        ("AZURE_OPENAI_API_KEY", azure.clone()),
        ("AZURE_OPENAI_ENDPOINT", sim.endpoint()),
        ("AZURE_OPENAI_DEPLOYMENTS", "gpt-4o-mini=mini".to_owned()),
        ("AZURE_OPENAI_PROXY", "none".to_owned()),
    ]);
    let gpt = BalancedGpt::builder()
        .providers(keys.providers().expect("providers"))
        .strategy(Strategy::RoundRobin)
        .max_concurrent_requests(3)
        .build()
        .expect("client");
    let requests: Vec<_> = (0..9).map(request).collect();
    let results = gpt.chat_completion_list(requests.clone()).await;
    let mut members = Vec::new();
    for (request, result) in requests.iter().zip(results) {
        let answer = result.expect("answered");
        assert_answers(request, &answer);
        members.push(answer.meta.member.clone().expect("a member"));
    }
    let mut stats: Vec<(String, u64)> = gpt
        .stats()
        .into_iter()
        .map(|s| (s.name.to_string(), s.requests))
        .collect();
    stats.sort();
    assert_eq!(
        stats,
        [
            ("AZURE_OPENAI_API_KEY".to_owned(), 3),
            ("OPENAI_API_KEY_1".to_owned(), 3),
            ("OPENAI_API_KEY_2".to_owned(), 3),
        ],
        "round robin: every key its share, each member named by its variable"
    );
    for name in [
        "AZURE_OPENAI_API_KEY",
        "OPENAI_API_KEY_1",
        "OPENAI_API_KEY_2",
    ] {
        assert!(
            members.iter().any(|m| &**m == name),
            "{name} answered: {members:?}"
        );
    }
    for key in [&k1, &k2, &azure] {
        assert_eq!(sim.key_stats(key).expect("known key").requests, 3);
    }
    assert!(!format!("{:?}", gpt.stats()).contains("SECRET"));
}

#[test]
fn members_convert_into_providers_named_by_their_variable() {
    let found = members(&[
        ("OPENAI_API_KEY_7", &key(7)),
        ("OPENAI_BASE_URL_7", "http://127.0.0.1:9/v1"),
    ])
    .expect("members");
    let config = found[0].openai_config().expect("openai");
    assert_eq!(config.get_base_url(), "http://127.0.0.1:9/v1");
    let provider: lbgpt::Provider = found[0].clone().into();
    assert_eq!(provider.name(), "OPENAI_API_KEY_7");
    assert_eq!(provider.kind(), "openai");
    assert!(!format!("{provider:?} {config:?}").contains("SECRET"));
    assert!(Path::new(lbgpt::env::DOTENV_FILE).is_relative());
}
