import type { AuthClient } from 'google-auth-library';

/**
 * Sends one authenticated JSON request to a Google REST API and returns the response body. IAM's
 * service-account keys API has no small Node client, so rekey calls its REST paths through the
 * admin client, which adds the bearer token. It throws gaxios errors, which toRekeyError converts.
 */
export async function requestJson<T>(
  client: AuthClient,
  request: { method: 'GET' | 'POST' | 'DELETE'; url: URL; body?: unknown; signal?: AbortSignal },
): Promise<T> {
  const response = await client.request<T>({
    url: request.url.toString(),
    method: request.method,
    data: request.body,
    responseType: 'json',
    signal: request.signal,
    retry: false,
  });
  return response.data;
}
