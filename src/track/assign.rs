//! The assignment problem: which detections go to which tracks so that the summed similarity is
//! the largest. Hand-written (the Hungarian method with potentials, O(n²·m)) because the crates
//! that have it take integer weights, and similarities here are OKS and IoU in [0, 1].

/// The pairs (row, column) that maximise the summed `similarity[row][column]` over one-to-one
/// matchings of a `rows × columns` matrix, among pairs at least `floor` (others never match).
/// Ties go to the matching found first over rows in order, so the result is deterministic.
pub fn best_matching(similarity: &[Vec<f64>], floor: f64) -> Vec<(usize, usize)> {
    let rows = similarity.len();
    let columns = similarity.first().map_or(0, Vec::len);
    if rows == 0 || columns == 0 {
        return Vec::new();
    }
    // Minimise cost = −similarity over a square matrix; pairs below the floor and padding cost 0,
    // which is never better than a real pair (every real similarity is ≥ floor ≥ 0 → cost ≤ 0).
    let n = rows.max(columns);
    let cost = |r: usize, c: usize| -> f64 {
        match similarity.get(r).and_then(|row| row.get(c)) {
            Some(&s) if s >= floor && s > 0.0 => -s,
            _ => 0.0,
        }
    };
    let assigned = hungarian(n, cost);
    assigned.into_iter().enumerate().filter(|&(r, c)| r < rows && c < columns && cost(r, c) < 0.0).collect()
}

/// The minimum-cost perfect matching of an `n × n` cost matrix: `row → column`. The classical
/// O(n³) Hungarian method with row and column potentials (1-based arrays, column 0 a sentinel).
fn hungarian(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    let (mut u, mut v) = (vec![0.0f64; n + 1], vec![0.0f64; n + 1]);
    // p[column] = the row matched to it (0: none); way[column] = the previous column on the path.
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for row in 1..=n {
        p[0] = row;
        let mut column = 0;
        let mut min = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[column] = true;
            let r = p[column];
            let (mut delta, mut next) = (f64::INFINITY, 0);
            for c in 1..=n {
                if used[c] {
                    continue;
                }
                let reduced = cost(r - 1, c - 1) - u[r] - v[c];
                if reduced < min[c] {
                    min[c] = reduced;
                    way[c] = column;
                }
                if min[c] < delta {
                    delta = min[c];
                    next = c;
                }
            }
            for c in 0..=n {
                if used[c] {
                    u[p[c]] += delta;
                    v[c] -= delta;
                } else {
                    min[c] -= delta;
                }
            }
            column = next;
            if p[column] == 0 {
                break;
            }
        }
        loop {
            let previous = way[column];
            p[column] = p[previous];
            column = previous;
            if column == 0 {
                break;
            }
        }
    }
    let mut assigned = vec![0usize; n];
    for c in 1..=n {
        if p[c] > 0 {
            assigned[p[c] - 1] = c - 1;
        }
    }
    assigned
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every one-to-one matching tried: the largest sum of pairs at or above the floor.
    fn brute_force(similarity: &[Vec<f64>], floor: f64) -> f64 {
        fn go(s: &[Vec<f64>], floor: f64, row: usize, used: &mut Vec<bool>) -> f64 {
            if row == s.len() {
                return 0.0;
            }
            let mut best = go(s, floor, row + 1, used); // this row unmatched
            for c in 0..used.len() {
                if !used[c] && s[row][c] >= floor && s[row][c] > 0.0 {
                    used[c] = true;
                    best = best.max(s[row][c] + go(s, floor, row + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        let columns = similarity.first().map_or(0, Vec::len);
        go(similarity, floor, 0, &mut vec![false; columns])
    }

    #[test]
    fn matches_brute_force_on_random_rectangular_matrices() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for trial in 0..400 {
            let (rows, columns) = (rng.random_range(0..6), rng.random_range(0..6));
            let similarity: Vec<Vec<f64>> =
                (0..rows).map(|_| (0..columns).map(|_| (rng.random_range(0..10) as f64) / 10.0).collect()).collect();
            let floor = [0.0, 0.3, 0.55][trial % 3];
            let got = best_matching(&similarity, floor);
            let sum: f64 = got.iter().map(|&(r, c)| similarity[r][c]).sum();
            assert!((sum - brute_force(&similarity, floor)).abs() < 1e-9, "{similarity:?} floor {floor}: {got:?}");
            // One-to-one, and never a pair below the floor.
            let mut seen_rows: Vec<usize> = got.iter().map(|p| p.0).collect();
            let mut seen_columns: Vec<usize> = got.iter().map(|p| p.1).collect();
            seen_rows.dedup();
            seen_columns.sort();
            seen_columns.dedup();
            assert_eq!((seen_rows.len(), seen_columns.len()), (got.len(), got.len()));
            assert!(got.iter().all(|&(r, c)| similarity[r][c] >= floor && similarity[r][c] > 0.0));
        }
    }

    /// Greedy would take the 0.9 pair and leave 0.1 + …; the best matching takes 0.8 + 0.8.
    #[test]
    fn prefers_the_best_total_over_the_best_single_pair() {
        let s = vec![vec![0.9, 0.8], vec![0.8, 0.0]];
        assert_eq!(best_matching(&s, 0.0), vec![(0, 1), (1, 0)]);
        assert!(best_matching(&[], 0.0).is_empty());
        assert!(best_matching(&[vec![0.2]], 0.3).is_empty());
    }
}
