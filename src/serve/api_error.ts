/**
 * Errors as OpenAI's API answers them: `{error: {message, type, param, code}}` with a 4xx (or 5xx)
 * status, so clients (the openai package among them) raise their usual exceptions with our message.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'server_error' | 'overloaded_error' = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** The response body. */
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 naming the request field at fault. */
export function badField(param: string, why: string): ApiError {
  return new ApiError(400, `'${param}' ${why}`, 'invalid_request_error', param, 'invalid_value');
}
