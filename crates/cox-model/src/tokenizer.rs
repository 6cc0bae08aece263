//! The tokenizer, special tokens and the LLaVA-1.5 prompt format.
//!
//! The chat template is not evaluated with a Jinja engine: when `tokenizer_config.json` or
//! `chat_template.json` carries a template in the LLaVA-1.5 form (`USER: ` … `ASSISTANT:`), the
//! equivalent rendering is implemented by hand, which for one user turn with an image is
//! `USER: <image>\n{prompt} ASSISTANT:`; the same string is the default when no template exists.
//! A ChatML template (`<|im_start|>role\n…<|im_end|>\n`, as SmolLM2's and Qwen's) is rendered
//! the same way: the template's default system turn when it has one, then
//! `<|im_start|>user\n{prompt}\n<image><|im_end|>\n<|im_start|>assistant\n` — the order of a
//! user message whose content is `[text, image]`, which is how tiny-llava-smol was trained.
//! Any other template is reported with a warning and the default is used.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use crate::config::LlavaConfig;
use crate::error::{Error, Result};

/// The placeholder string for an image in a prompt.
pub const IMAGE_TOKEN: &str = "<image>";

/// How prompts are rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptFormat {
    /// The llava-hf LLaVA-1.5 chat template, rendered by hand.
    Llava15Template,
    /// No template present: `USER: <image>\n{prompt} ASSISTANT:`.
    Default,
    /// A ChatML template; `system` is the system turn its template inserts when a conversation
    /// has none (SmolLM2's "You are a helpful AI assistant named SmolLM, …"), if any.
    ChatMl {
        /// The default system message.
        system: Option<String>,
    },
}

impl PromptFormat {
    /// What separates the rendered prompt from the assistant's answer: LLaVA-1.5's `ASSISTANT:`
    /// is followed by a space, ChatML's `<|im_start|>assistant\n` by the answer itself.
    pub fn answer_separator(&self) -> &'static str {
        match self {
            PromptFormat::Llava15Template | PromptFormat::Default => " ",
            PromptFormat::ChatMl { .. } => "",
        }
    }
}

/// The default system message of a ChatML template: the text of the literal
/// `<|im_start|>system\n…<|im_end|>` it emits when the first message is not a system message.
fn chatml_default_system(t: &str) -> Option<String> {
    const OPEN: &str = "<|im_start|>system\n";
    let start = t.find(OPEN)? + OPEN.len();
    let end = start + t[start..].find("<|im_end|>")?;
    let text = &t[start..end];
    // A template that only copies a user-given system message has no literal text here.
    if text.contains("{{") || text.contains("message") || text.contains('\'') {
        return None;
    }
    Some(text.to_string())
}

/// A tokenizer with the special tokens and prompt format of a LLaVA checkpoint.
#[derive(Debug, Clone)]
pub struct LlavaTokenizer {
    tokenizer: Tokenizer,
    path: PathBuf,
    /// Beginning-of-sequence id, if any.
    pub bos_token_id: Option<u32>,
    /// Ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// Id of `<image>`.
    pub image_token_id: u32,
    /// Whether BOS is prepended when the tokenizer's post-processor does not add it.
    pub add_bos: bool,
    /// The prompt format.
    pub format: PromptFormat,
}

/// Parses a JSON file, `None` when it does not exist.
pub(crate) fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Json {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
}

/// A special token entry is either a string or `{"content": "..."}`.
fn token_str(v: Option<&serde_json::Value>) -> Option<String> {
    let v = v?;
    v.as_str().map(str::to_string).or_else(|| {
        v.get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string)
    })
}

/// Recognises the LLaVA-1.5 templates: the llava-hf one upper-cases the role name
/// (`message['role'].upper() + ': '`), older ones spell `USER: ` out; both end the prompt
/// with `ASSISTANT:`.
fn is_llava15_template(t: &str) -> bool {
    t.contains("ASSISTANT:") && (t.contains("USER") || t.contains(".upper()"))
}

impl LlavaTokenizer {
    /// Loads `tokenizer.json` and the optional `tokenizer_config.json`,
    /// `special_tokens_map.json` and `chat_template.json` from a model directory.
    pub fn from_model_dir(dir: &Path, config: &LlavaConfig) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::MissingFile {
                path,
                hint: "a fast-tokenizer tokenizer.json is required (slow SentencePiece-only \
                       checkpoints are not supported)"
                    .into(),
            });
        }
        let tokenizer = Tokenizer::from_file(&path).map_err(|e| Error::Tokenizer {
            path: Some(path.clone()),
            msg: e.to_string(),
        })?;
        let tok_cfg = read_json(&dir.join("tokenizer_config.json"))?;
        let special = read_json(&dir.join("special_tokens_map.json"))?;
        let chat = read_json(&dir.join("chat_template.json"))?;
        let lookup = |key: &str| -> Option<u32> {
            let s = token_str(tok_cfg.as_ref().and_then(|c| c.get(key)))
                .or_else(|| token_str(special.as_ref().and_then(|c| c.get(key))))?;
            tokenizer.token_to_id(&s)
        };
        let bos_token_id = lookup("bos_token").or(config.text_config.bos_token_id);
        let mut eos_token_ids = config.eos_token_ids();
        if let Some(e) = lookup("eos_token") {
            if !eos_token_ids.contains(&e) {
                eos_token_ids.push(e);
            }
        }
        if let Some(g) = read_json(&dir.join("generation_config.json"))? {
            let ids: Vec<u32> = match g.get("eos_token_id") {
                Some(serde_json::Value::Number(n)) => {
                    n.as_u64().map(|n| vec![n as u32]).unwrap_or_default()
                }
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_u64())
                    .map(|x| x as u32)
                    .collect(),
                _ => vec![],
            };
            for i in ids {
                if !eos_token_ids.contains(&i) {
                    eos_token_ids.push(i);
                }
            }
        }
        let image_token_id =
            tokenizer
                .token_to_id(IMAGE_TOKEN)
                .ok_or_else(|| Error::Tokenizer {
                    path: Some(path.clone()),
                    msg: format!("the vocabulary has no {IMAGE_TOKEN} token"),
                })?;
        if image_token_id != config.image_token_index {
            return Err(Error::Tokenizer {
                path: Some(path.clone()),
                msg: format!(
                    "{IMAGE_TOKEN} has id {image_token_id} but config.json says image_token_index = {}",
                    config.image_token_index
                ),
            });
        }
        let add_bos = tok_cfg
            .as_ref()
            .and_then(|c| c.get("add_bos_token"))
            .and_then(|b| b.as_bool())
            .unwrap_or(true);
        let template = chat
            .as_ref()
            .and_then(|c| c.get("chat_template"))
            .or_else(|| tok_cfg.as_ref().and_then(|c| c.get("chat_template")))
            .and_then(|t| t.as_str().map(str::to_string));
        let format = match template {
            Some(t) if is_llava15_template(&t) => PromptFormat::Llava15Template,
            Some(t) if t.contains("<|im_start|>") => PromptFormat::ChatMl {
                system: chatml_default_system(&t),
            },
            Some(_) => {
                tracing::warn!(
                    "chat template in {} is not the LLaVA-1.5 form; using the default prompt format",
                    dir.display()
                );
                PromptFormat::Default
            }
            None => PromptFormat::Default,
        };
        Ok(Self {
            tokenizer,
            path,
            bos_token_id,
            eos_token_ids,
            image_token_id,
            add_bos,
            format,
        })
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Renders one user turn (optionally with one image) followed by the assistant prompt.
    pub fn render_prompt(&self, prompt: &str, with_image: bool) -> String {
        let image = if with_image {
            format!("{IMAGE_TOKEN}\n")
        } else {
            String::new()
        };
        match &self.format {
            // The template emits `ROLE: `, the images, then each text part followed by a space,
            // then `ASSISTANT:`.
            PromptFormat::Llava15Template => format!("USER: {image}{prompt} ASSISTANT:"),
            PromptFormat::Default => format!("USER: {image}{prompt} ASSISTANT:"),
            PromptFormat::ChatMl { system } => {
                let system = system
                    .as_ref()
                    .map(|s| format!("<|im_start|>system\n{s}<|im_end|>\n"))
                    .unwrap_or_default();
                let image = if with_image {
                    format!("\n{IMAGE_TOKEN}")
                } else {
                    String::new()
                };
                format!(
                    "{system}<|im_start|>user\n{prompt}{image}<|im_end|>\n<|im_start|>assistant\n"
                )
            }
        }
    }

    /// Tokenizes text, adding BOS as the checkpoint's tokenizer does (or prepending it when
    /// `add_bos` is set and the post-processor did not).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Tokenizer {
                path: Some(self.path.clone()),
                msg: e.to_string(),
            })?;
        let mut ids = enc.get_ids().to_vec();
        if self.add_bos {
            if let Some(b) = self.bos_token_id {
                if ids.first() != Some(&b) {
                    ids.insert(0, b);
                }
            }
        }
        Ok(ids)
    }

    /// Tokenizes text without any special token added.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Tokenizer {
                path: Some(self.path.clone()),
                msg: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids to text, skipping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| Error::Tokenizer {
                path: Some(self.path.clone()),
                msg: e.to_string(),
            })
    }

    /// The string of one token id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// Replaces each `<image>` id by `n` copies (one per image feature).
    pub fn expand_image_tokens(&self, ids: &[u32], n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(ids.len() + n);
        for &i in ids {
            if i == self.image_token_id {
                out.extend(std::iter::repeat_n(i, n));
            } else {
                out.push(i);
            }
        }
        out
    }
}
