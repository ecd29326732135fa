// Typed errors. Services throw these; the app's error handler turns them into the contract's
// envelope. Anything else becomes a 500 `internal_error` with a fixed message (never a stack).

export interface ErrorBody {
  error: string;
  message: string;
  details: unknown;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "AppError";
  }

  toBody(): ErrorBody {
    return { error: this.code, message: this.message, details: this.details };
  }
}

export interface FieldIssue {
  path: string;
  message: string;
}

export const notFound = (message = "The requested resource was not found") => new AppError(404, "not_found", message);
export const badRequest = (message: string, details: unknown = null) => new AppError(400, "bad_request", message, details);
export const conflict = (message: string, headers: Record<string, string> = {}) => new AppError(409, "conflict", message, null, headers);
export const unauthorized = (message: string) =>
  new AppError(401, "unauthorized", message, null, { "WWW-Authenticate": "Bearer" });
export const serviceUnavailable = (message: string, details: unknown = null) =>
  new AppError(503, "service_unavailable", message, details, { "Retry-After": "1" });
export const payloadTooLarge = (limit: number) =>
  new AppError(413, "payload_too_large", `Request body must be at most ${limit} bytes`);
export const unsupportedMediaType = (message = "Content-Type must be application/json") =>
  new AppError(415, "unsupported_media_type", message);

export function validationError(issues: FieldIssue[]): AppError {
  return new AppError(422, "validation_error", issues[0]?.message ?? "Invalid request", issues);
}

/** A dependency (Postgres, Redis) failed or timed out. Carries which one, for logs and /ready. */
export class DependencyError extends Error {
  /** a write may have committed although no answer said so (the connection was lost around it) */
  readonly outcomeUnknown: boolean;

  constructor(
    readonly dependency: "database" | "redis",
    message: string,
    override readonly cause?: unknown,
    options: { outcomeUnknown?: boolean } = {},
  ) {
    super(`${dependency}: ${message}`);
    this.name = "DependencyError";
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }
}

/**
 * Postgres refused a statement (SQLSTATE): a constraint or check the code did not expect. Its
 * message is Postgres's own, without the query's parameters (which may hold personal data).
 */
export class DatabaseError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly constraint?: string,
  ) {
    super(message);
    this.name = "DatabaseError";
  }
}

export const INTERNAL_ERROR_BODY: ErrorBody = {
  error: "internal_error",
  message: "An unexpected error occurred",
  details: null,
};
