//! What a request contributes to the semantic cache: the text that is embedded, the rest of
//! the request (which must match exactly: the scope), and whether it may be served at all.

use lbgpt_core::{ChatMessage, ChatRequest, ContentPart, EmbedMethod, MessageContent, Role};

/// Why a request is not answered by the semantic cache (it still goes upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ineligible {
    /// The request offers tools, forces a tool choice, or its conversation holds tool calls
    /// or tool results: answers depend on details embeddings blur.
    Tools,
    /// A message holds an image, audio, a file or another non-text part, which is not
    /// embedded.
    NonText,
    /// `n > 1`: several sampled choices are asked for.
    SeveralChoices,
}

/// Whether `request` may be answered semantically (tools, non-text parts and `n > 1` are
/// refused unless `allow_unsafe`); the first reason it may not.
pub fn eligibility(request: &ChatRequest, allow_unsafe: bool) -> Result<(), Ineligible> {
    if allow_unsafe {
        return Ok(());
    }
    if request.n.is_some_and(|n| n > 1) {
        return Err(Ineligible::SeveralChoices);
    }
    let has_tools = request
        .tools
        .as_ref()
        .is_some_and(|tools| !tools.is_empty())
        || request.tool_choice.is_some()
        || request.messages.iter().any(|message| {
            message
                .tool_calls
                .as_ref()
                .is_some_and(|calls| !calls.is_empty())
                || message.tool_call_id.is_some()
                || matches!(message.role, Role::Tool | Role::Function)
        });
    if has_tools {
        return Err(Ineligible::Tools);
    }
    let non_text = request
        .messages
        .iter()
        .any(|message| match &message.content {
            Some(MessageContent::Parts(parts)) => parts.iter().any(|part| part.as_text().is_none()),
            _ => false,
        });
    if non_text {
        return Err(Ineligible::NonText);
    }
    Ok(())
}

/// Whether `method` embeds `message` (at `index` of `count` messages; `last_user` is the
/// index of the last user message).
fn selects(
    method: EmbedMethod,
    message: &ChatMessage,
    index: usize,
    last_user: Option<usize>,
) -> bool {
    match method {
        EmbedMethod::LastUser => Some(index) == last_user,
        EmbedMethod::UserOnly => message.role == Role::User,
        EmbedMethod::All => true,
        EmbedMethod::SystemOnly => matches!(message.role, Role::System | Role::Developer),
        // A method added later embeds nothing until it is handled here.
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// The text `method` embeds for `request`: for `last_user` the last user message's text as
/// is; for the other methods each selected message as `role: text`, joined by newlines (the
/// seed's form). `None` when it selects no text at all.
pub fn embedded_text(request: &ChatRequest, method: EmbedMethod) -> Option<String> {
    let last_user = request.messages.iter().rposition(|m| m.role == Role::User);
    let mut out = String::new();
    for (index, message) in request.messages.iter().enumerate() {
        if !selects(method, message, index, last_user) {
            continue;
        }
        let text = message.text();
        if method == EmbedMethod::LastUser {
            out = text;
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(message.role.as_str());
        out.push_str(": ");
        out.push_str(&text);
    }
    (!out.trim().is_empty()).then_some(out)
}

/// `request` with the text `method` embeds blanked out (text contents and text parts become
/// empty; every other field and part stays): two requests may share an answer only if these
/// are identical.
pub fn without_embedded_text(request: &ChatRequest, method: EmbedMethod) -> ChatRequest {
    let mut scoped = request.clone();
    let last_user = scoped.messages.iter().rposition(|m| m.role == Role::User);
    for (index, message) in scoped.messages.iter_mut().enumerate() {
        if !selects(method, message, index, last_user) {
            continue;
        }
        match &mut message.content {
            Some(MessageContent::Text(text)) => text.clear(),
            Some(MessageContent::Parts(parts)) => {
                for part in parts.iter_mut() {
                    if let ContentPart::Text { text, .. } = part {
                        text.clear();
                    }
                }
            }
            None => {}
        }
    }
    scoped
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::{FunctionDefinition, Tool};

    fn conversation() -> ChatRequest {
        ChatRequest::new(
            "m",
            vec![
                ChatMessage::system("Be brief."),
                ChatMessage::user("First question"),
                ChatMessage::assistant("First answer"),
                ChatMessage::user("Second question"),
            ],
        )
    }

    #[test]
    fn methods_select_their_messages() {
        let request = conversation();
        assert_eq!(
            embedded_text(&request, EmbedMethod::LastUser).as_deref(),
            Some("Second question")
        );
        assert_eq!(
            embedded_text(&request, EmbedMethod::UserOnly).as_deref(),
            Some("user: First question\nuser: Second question")
        );
        assert_eq!(
            embedded_text(&request, EmbedMethod::SystemOnly).as_deref(),
            Some("system: Be brief.")
        );
        let all = embedded_text(&request, EmbedMethod::All).unwrap_or_default();
        assert!(all.starts_with("system: Be brief.\nuser: First question\nassistant: First"));
        let no_system = ChatRequest::new("m", vec![ChatMessage::user("q")]);
        assert_eq!(embedded_text(&no_system, EmbedMethod::SystemOnly), None);
    }

    #[test]
    fn blanking_keeps_everything_else() {
        let request = conversation();
        let scoped = without_embedded_text(&request, EmbedMethod::LastUser);
        assert_eq!(scoped.messages[1].text(), "First question");
        assert_eq!(scoped.messages[3].text(), "");
        assert_eq!(scoped.messages.len(), 4);
        let scoped = without_embedded_text(&request, EmbedMethod::UserOnly);
        assert_eq!(scoped.messages[0].text(), "Be brief.");
        assert_eq!(scoped.messages[1].text(), "");
    }

    #[test]
    fn unsafe_requests_are_refused_unless_allowed() {
        let plain = ChatRequest::new("m", vec![ChatMessage::user("q")]);
        assert_eq!(eligibility(&plain, false), Ok(()));
        assert_eq!(
            eligibility(&plain.clone().n(2), false),
            Err(Ineligible::SeveralChoices)
        );
        let mut tools = plain.clone();
        tools.tools = Some(vec![Tool::function(FunctionDefinition::new(
            "f",
            serde_json::json!({}),
        ))]);
        assert_eq!(eligibility(&tools, false), Err(Ineligible::Tools));
        assert_eq!(eligibility(&tools, true), Ok(()));
        let image = ChatRequest::new(
            "m",
            vec![ChatMessage::user(vec![
                ContentPart::text("what is this?"),
                ContentPart::image_url("https://example.com/cat.png"),
            ])],
        );
        assert_eq!(eligibility(&image, false), Err(Ineligible::NonText));
    }
}
