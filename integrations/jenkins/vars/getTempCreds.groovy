// getTempCreds: the original write-up's step, kept for pipelines migrating from it.
// It prompts for a plain SessionToken:AccessKeyId:SecretAccessKey token and returns it.
// A plain token works for anyone who sees it until it expires; use withExplodingToken instead.

def call(Map args = [:]) {
    def command = 'aws sts get-session-token --duration-seconds 900 | jq -r ".Credentials|.SessionToken+\\":\\"+.AccessKeyId+\\":\\"+.SecretAccessKey"'
    sh(script: "echo '${command}'", label: 'Expand to view STS command to retrieve temporary token')
    echo('getTempCreds: a plain token is usable by anything that sees it until it expires; ' +
         'prefer withExplodingToken (sealed, single use)')
    def message = 'Please enter temporary AWS session token.\n' +
        'To retrieve this key, issue STS command above from CLI (requires jq command-line JSON processor)\n'
    def temp_creds = input(message: message, ok: 'Submit', parameters: [password(name: 'tempCred')])
    // A hudson.util.Secret on current Jenkins: its plain text, not the deprecated toString().
    return temp_creds instanceof String ? temp_creds : temp_creds.getPlainText()
}
