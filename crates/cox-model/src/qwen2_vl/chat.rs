//! The tokenizer, special tokens, chat template and generation defaults of a Qwen2-VL
//! checkpoint.
//!
//! The chat template is the checkpoint's own, rendered with `minijinja` (plus Python string
//! methods) the way transformers' processor renders it: from `chat_template.jinja`, else
//! `chat_template.json`, else `processor_config.json`'s or `tokenizer_config.json`'s
//! `chat_template` key. Without any, the Qwen2-VL-Instruct format is written by hand.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;

use super::config::Qwen2VlConfig;
use crate::error::{Error, Result};
use crate::generation::{read_generation_config, GenerationDefaults};

/// The image placeholder the chat template emits, expanded to one id per merged patch.
pub const IMAGE_PAD: &str = "<|image_pad|>";

/// The Qwen2-VL-Instruct format for one user turn with an optional image, used when the
/// checkpoint carries no chat template.
pub fn default_prompt(prompt: &str, with_image: bool) -> String {
    let image = if with_image {
        "<|vision_start|><|image_pad|><|vision_end|>"
    } else {
        ""
    };
    format!(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{image}\
         {prompt}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// Tokenizer, chat template and special ids of a Qwen2-VL checkpoint.
#[derive(Debug, Clone)]
pub struct QwenTokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
    /// The Jinja chat template, if the checkpoint has one.
    pub chat_template: Option<String>,
    /// Id of `<|image_pad|>`.
    pub image_token_id: u32,
    /// Generation settings.
    pub generation: GenerationDefaults,
}

use crate::tokenizer::read_json;

/// A `chat_template` value: a string, or a list of `{name, template}` (the `default` one).
fn template_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .or_else(|| a.first())
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// Finds the checkpoint's chat template, in transformers' order of precedence.
pub fn find_chat_template(dir: &Path) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|e| Error::io(&jinja, e));
    }
    for file in [
        "chat_template.json",
        "processor_config.json",
        "tokenizer_config.json",
    ] {
        if let Some(v) = read_json(&dir.join(file))? {
            if let Some(t) = template_of(v.get("chat_template")) {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// Renders a chat template for one user turn (`{"type": "image"}` first when `with_image`,
/// then the text) with the generation prompt, as `processor.apply_chat_template(messages,
/// add_generation_prompt=True)` does.
pub fn render_chat_template(template: &str, prompt: &str, with_image: bool) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    let bad = |e: minijinja::Error| Error::Tokenizer {
        path: None,
        msg: format!("cannot render the chat template: {e:#}"),
    };
    env.add_template("chat", template).map_err(bad)?;
    let mut content = Vec::new();
    if with_image {
        content.push(serde_json::json!({"type": "image"}));
    }
    content.push(serde_json::json!({"type": "text", "text": prompt}));
    let ctx = serde_json::json!({
        "messages": [{"role": "user", "content": content}],
        "add_generation_prompt": true,
        "add_vision_id": false,
    });
    env.get_template("chat")
        .and_then(|t| t.render(ctx))
        .map_err(bad)
}

impl QwenTokenizer {
    /// Loads `tokenizer.json`, the chat template and `generation_config.json` from a model
    /// directory.
    pub fn from_model_dir(dir: &Path, config: &Qwen2VlConfig) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::MissingFile {
                path,
                hint: "a fast-tokenizer tokenizer.json is required".into(),
            });
        }
        let tokenizer = Tokenizer::from_file(&path).map_err(|e| Error::Tokenizer {
            path: Some(path.clone()),
            msg: e.to_string(),
        })?;
        match tokenizer.token_to_id(IMAGE_PAD) {
            Some(id) if id == config.image_token_id => {}
            found => {
                return Err(Error::Tokenizer {
                    path: Some(path),
                    msg: format!(
                        "{IMAGE_PAD} has id {found:?} in the tokenizer but config.json's \
                         image_token_id is {}",
                        config.image_token_id
                    ),
                })
            }
        }
        let chat_template = find_chat_template(dir)?;
        if chat_template.is_none() {
            tracing::warn!(
                "{} has no chat template; using the Qwen2-VL-Instruct format",
                dir.display()
            );
        }
        // transformers' generate takes eos ids and the repetition penalty from
        // generation_config.json, else from config.json.
        let mut generation = GenerationDefaults {
            eos_token_ids: config.eos_token_ids.clone(),
            repetition_penalty: 1.0,
        };
        if let Some(g) = read_generation_config(dir)? {
            if !g.eos_token_ids.is_empty() {
                generation.eos_token_ids = g.eos_token_ids;
            }
            generation.repetition_penalty = g.repetition_penalty;
        }
        if generation.eos_token_ids.is_empty() {
            if let Some(id) = tokenizer.token_to_id("<|im_end|>") {
                generation.eos_token_ids.push(id);
            }
        }
        Ok(Self {
            tokenizer,
            path: dir.join("tokenizer.json"),
            chat_template,
            image_token_id: config.image_token_id,
            generation,
        })
    }

    /// Renders the chat prompt for one user turn with an optional image.
    pub fn render_prompt(&self, prompt: &str, with_image: bool) -> Result<String> {
        match &self.chat_template {
            Some(t) => render_chat_template(t, prompt, with_image),
            None => Ok(default_prompt(prompt, with_image)),
        }
    }

    /// Tokenizes text (special tokens in the text are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer {
                path: Some(self.path.clone()),
                msg: e.to_string(),
            })
    }

    /// Decodes ids, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Tokenizer {
                path: Some(self.path.clone()),
                msg: e.to_string(),
            })
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qwen2_vl::testing::QWEN_CHAT_TEMPLATE;

    #[test]
    fn fallback_prompt_equals_the_instruct_template() {
        for with_image in [true, false] {
            let rendered =
                render_chat_template(QWEN_CHAT_TEMPLATE, "Describe this image.", with_image)
                    .unwrap();
            assert_eq!(rendered, default_prompt("Describe this image.", with_image));
        }
    }

    #[test]
    fn template_errors_are_reported_not_panicked() {
        let err =
            render_chat_template("{{ raise_exception('no images here') }}", "x", true).unwrap_err();
        assert!(err.to_string().contains("no images here"), "{err}");
        assert!(render_chat_template("{% for %}", "x", true).is_err());
    }

    #[test]
    fn python_string_methods_work() {
        let t = "{% for m in messages %}{{ m['role'].upper() }}: {{ m['content'][-1]['text'].strip() }}{% endfor %}";
        assert_eq!(render_chat_template(t, "  hi ", false).unwrap(), "USER: hi");
    }
}
