// Translators for providers that do not speak OpenAI chat (./translate/).
import { anthropicTranslator } from './translate/anthropic.js';
import { geminiTranslator } from './translate/gemini.js';
import { ollamaNativeTranslator } from './translate/ollama.js';
import type { ChatTranslator } from './translate/types.js';

const table: Record<'anthropic' | 'gemini' | 'ollama', ChatTranslator> = {
  anthropic: anthropicTranslator,
  gemini: geminiTranslator,
  ollama: ollamaNativeTranslator,
};

export function translatorFor(type: 'anthropic' | 'gemini' | 'ollama'): ChatTranslator | undefined {
  return table[type];
}
