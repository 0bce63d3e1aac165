/** Chat templates for the chat data tests. */

/** ChatML with the assistant's content and end of turn inside {% generation %} (what TRL's training templates mark). */
export const CHATML_GENERATION = "{%- for message in messages %}{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' }}{%- generation %}{{- message.content + '<|im_end|>\\n' }}{%- endgeneration %}{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** The same ChatML without the blocks: the learned text is found from the renders of each prefix. */
export const CHATML = CHATML_GENERATION.replace("{%- generation %}", '').replace('{%- endgeneration %}', '');
