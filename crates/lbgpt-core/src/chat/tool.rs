use crate::Extra;
use serde::{Deserialize, Serialize};

/// A tool the model may call (`{"type": "function", "function": {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The tool type; `"function"` today.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function's definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDefinition>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Tool {
    /// A function tool.
    pub fn function(function: FunctionDefinition) -> Self {
        Tool {
            kind: "function".to_owned(),
            function: Some(function),
            extra: Extra::new(),
        }
    }
}

/// The definition of a function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// The function's name.
    pub name: String,
    /// What the function does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Whether the model must follow the schema exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl FunctionDefinition {
    /// A function with a name and a JSON Schema for its arguments.
    pub fn new(name: impl Into<String>, parameters: serde_json::Value) -> Self {
        FunctionDefinition {
            name: name.into(),
            description: None,
            parameters: Some(parameters),
            strict: None,
            extra: Extra::new(),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// A call of a tool made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, echoed back in the `tool` message that answers it.
    pub id: String,
    /// The tool type; `"function"` today.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function called and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

fn function_kind() -> String {
    "function".to_owned()
}

/// A function name and its arguments as a JSON string, as the model wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// The arguments: a JSON document as a string (not guaranteed to be valid JSON).
    pub arguments: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `tool_choice`: a mode (`"none"`, `"auto"`, `"required"`) or a named tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `"none"`, `"auto"`, `"required"` or a future mode.
    Mode(String),
    /// `{"type": "function", "function": {"name": ...}}`
    Named(NamedToolChoice),
}

impl ToolChoice {
    /// `"auto"`: the model decides.
    pub fn auto() -> Self {
        ToolChoice::Mode("auto".to_owned())
    }

    /// `"none"`: no tool calls.
    pub fn none() -> Self {
        ToolChoice::Mode("none".to_owned())
    }

    /// `"required"`: at least one tool call.
    pub fn required() -> Self {
        ToolChoice::Mode("required".to_owned())
    }

    /// Forces a call of the named function.
    pub fn function(name: impl Into<String>) -> Self {
        let mut function = Extra::new();
        function.insert("name".to_owned(), serde_json::Value::String(name.into()));
        ToolChoice::Named(NamedToolChoice {
            kind: "function".to_owned(),
            function: Some(function),
            extra: Extra::new(),
        })
    }
}

/// A `tool_choice` object naming one tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedToolChoice {
    /// The tool type; `"function"` today.
    #[serde(rename = "type")]
    pub kind: String,
    /// `{"name": ...}` of the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<Extra>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
